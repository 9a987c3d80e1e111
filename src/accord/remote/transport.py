"""The key a server seals secrets under for one token's clients, so no client ever needs the master key.

Both ends derive it from the token secret: the client holds its token, the server sees it on every
request. Another token's client cannot open what was sealed for this one, and a snapshot file or a
captured stream holds no plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from accord.core.crypto import Cipher

_LABEL = b"accord remote transport key v1"


@lru_cache(maxsize=4096)
def transport_cipher(token_secret: str) -> Cipher:
    """The cipher of the token ``token_secret`` (cached: a server derives it for every request of a stream)."""
    return Cipher.from_key(hmac.new(token_secret.encode(), _LABEL, hashlib.sha256).digest())
