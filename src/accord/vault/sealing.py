"""How an original is sealed at rest: AES-GCM bound to its scope and token, found again by a keyed fingerprint."""

from __future__ import annotations

from collections.abc import Callable

from accord.core.crypto import Cipher, DecryptionError
from accord.vault.records import Item, NewRow
from accord.vault.tokens import split_token

__all__ = ["Sealer", "original_aad"]


def original_aad(scope: str, token: str) -> bytes:
    """Binds an encrypted original to its row: copied to another scope or token, it no longer opens."""
    return f"accord-vault\0{scope}\0{token}".encode()


class Sealer:
    """The vault's cipher, used the one way the vault uses it; backends get this, never the cipher."""

    def __init__(self, cipher: Cipher, *, reload: Callable[[], Cipher] | None = None) -> None:
        self.cipher = cipher
        self._reload = reload

    def row(self, scope: str, item: Item, token: str) -> NewRow:
        blob = self.cipher.encrypt(item.original.encode(), aad=original_aad(scope, token))
        return NewRow(item, token, split_token(token)[1], blob)

    def open(self, scope: str, token: str, blob: bytes) -> str:
        try:
            return self.cipher.decrypt(blob, aad=original_aad(scope, token)).decode()
        except DecryptionError:
            if self._reload is None or Cipher.key_id_of(blob) in self.cipher.key_ids:
                raise
        # Sealed under a key added since this process loaded its keys (a rotation): reload them once.
        self.cipher = self._reload().with_fingerprint_key(self.cipher.fingerprint_key_id)
        return self.cipher.decrypt(blob, aad=original_aad(scope, token)).decode()

    def fingerprint(self, scope: str, token_type: str, original: str) -> bytes:
        return self.cipher.fingerprint(f"{scope}\0{token_type}\0".encode() + original.encode())
