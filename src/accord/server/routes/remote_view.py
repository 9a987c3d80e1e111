"""What one token's remote client may see of an entry or a change, and in what form.

A key outside the token's read rules is not shown at all. A secret is shown only with reveal rights,
opened with the master key and sealed again under the token's transport key (docs/remote.md, Secrets);
without them the secret is treated as a key outside the rules. A schema entry is shown to a token
that may read the setting it describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from fastapi import Request

from accord.auth.tokens import Token
from accord.config.live import LiveConfig
from accord.core.errors import AccordError, AuthenticationError
from accord.core.keys import SCHEMA_PREFIX, path_to_key
from accord.remote.transport import transport_cipher
from accord.server.deps import presented_token
from accord.store.types import Change, Entry


class RemoteView:
    def __init__(self, live: LiveConfig, caller: Token, secret: str, prefixes: Sequence[str] = ()) -> None:
        self._live = live
        self._policy = caller.policy
        self._transport = transport_cipher(secret)
        self._prefixes = tuple(prefixes)

    @classmethod
    def of(cls, request: Request, live: LiveConfig, caller: Token, prefixes: Sequence[str] = ()) -> RemoteView:
        secret = presented_token(request)
        if secret is None:  # the caller dependency has already refused this; keeps the types honest
            raise AuthenticationError("a token is required")
        return cls(live, caller, secret, prefixes)

    def readable(self, key: str) -> bool:
        if self._policy.can_read(key):
            return True
        if key.startswith(SCHEMA_PREFIX):
            try:
                return self._policy.can_read(path_to_key(key.removeprefix(SCHEMA_PREFIX)))
            except AccordError:
                return False
        return False

    def entry(self, entry: Entry) -> Entry | None:
        if not self._wanted(entry.key) or not self.readable(entry.key):
            return None
        if not entry.secret:
            return entry
        if not self._policy.can_reveal(entry.key):
            return None
        return replace(entry, value=self.reseal(entry.key, entry.value))

    def change(self, change: Change) -> Change | None:
        """The change as this token's stream or page carries it; None when it carries only the revision."""
        if not change.key or not self._wanted(change.key) or not self.readable(change.key):
            return None
        if not change.secret:
            return change
        if not self._policy.can_reveal(change.key):
            return None
        return change if change.value is None else replace(change, value=self.reseal(change.key, change.value))

    def history_item(self, change: Change) -> Change:
        """A version of a key the caller may read: a secret's value only with reveal rights."""
        shown = self.change(change)
        return shown if shown is not None else replace(change, value=None)

    def reseal(self, key: str, sealed: bytes) -> bytes:
        master = self._live.cipher()
        return self._transport.encrypt(master.decrypt(sealed, aad=key.encode()), aad=key.encode())

    def unseal(self, key: str, sealed: bytes) -> bytes:
        """A client's secret (sealed under its transport key) as the plaintext, to be sealed with the master key."""
        return self._transport.decrypt(sealed, aad=key.encode())

    def seal(self, key: str, plaintext: bytes) -> bytes:
        return self._live.cipher().encrypt(plaintext, aad=key.encode())

    def _wanted(self, key: str) -> bool:
        return not self._prefixes or key.startswith(self._prefixes)
