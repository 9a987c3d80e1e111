"""The vault as the proxy uses it: mask a request's texts in one call, and the grammar its unmasker looks for.

Two kinds, chosen in ``open_masking`` by the rule every accord process follows (config/connect.py's
``remote_addr``): ``LocalMasking`` on the database and the master key (``SharedVault.from_url``), and
``RemoteMasking`` through accord servers (ACCORD_ADDR + ACCORD_TOKEN, no database URL): one
``POST /api/vault/mask`` per request, and the server's rules on ``vault/<scope>/`` decide.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from accord.config.connect import remote_addr
from accord.core import environ
from accord.core.errors import BadRequestError, RequestTooLargeError
from accord.proxy.texts import mask_texts
from accord.remote.vault import RemoteVault
from accord.vault import BUILTIN_DETECTORS, DetectorSet, TokenGrammar, Vault

__all__ = ["LocalMasking", "Masking", "RemoteMasking", "open_masking"]

Closer = Callable[[], Awaitable[None]]


class Masking(Protocol):
    """What the proxy needs of a vault."""

    @property
    def grammar(self) -> TokenGrammar:
        """Finds the vault's tokens in an answer (the unmasker keeps only the request's own)."""
        ...

    @property
    def forwards_tokens(self) -> bool:
        """Whether callers' accord tokens go on to the vault, which then decides (remote mode)."""
        ...

    async def mask(
        self, texts: list[str], scope: str, *, max_new: int, token: str | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """Masked texts and their mappings; more than ``max_new`` distinct values is a 413 ``BadRequestError``."""
        ...

    async def aclose(self) -> None: ...


def too_many(max_new: int) -> BadRequestError:
    return BadRequestError(
        f"the request holds more than {max_new} distinct values to mask; nothing was masked or sent (split it, "
        "or raise the proxy's --max-mappings)",
        status=413,
        code="too_many_mappings",
    )


class LocalMasking:
    """The vault on the database (the proxy holds the master key)."""

    forwards_tokens = False

    def __init__(self, vault: Vault, close: Closer | None) -> None:
        self.vault = vault
        self._close = close

    @property
    def grammar(self) -> TokenGrammar:
        return self.vault.grammar

    async def mask(
        self, texts: list[str], scope: str, *, max_new: int, token: str | None = None
    ) -> tuple[list[str], dict[str, str]]:
        try:  # counted in the masking's own detection pass, before anything is stored
            return await mask_texts(self.vault, texts, scope, max_new=max_new)
        except RequestTooLargeError:
            raise too_many(max_new) from None

    async def aclose(self) -> None:
        if self._close is not None:
            await self._close()


class RemoteMasking:
    """The vault through accord servers; the proxy holds a token, neither the database nor the master key."""

    forwards_tokens = True

    def __init__(self, remote: RemoteVault) -> None:
        self.remote = remote
        self._grammar = DetectorSet(BUILTIN_DETECTORS).grammar  # until the server names its types

    @property
    def grammar(self) -> TokenGrammar:
        return self._grammar

    async def mask(
        self, texts: list[str], scope: str, *, max_new: int, token: str | None = None
    ) -> tuple[list[str], dict[str, str]]:
        try:
            masked = await self.remote.mask(texts, scope, max_new=max_new, token=token)
        except RequestTooLargeError:  # the server counted more than max_new values (batches fit its body limit)
            raise too_many(max_new) from None
        if masked.types and masked.types != self._grammar.types:
            self._grammar = TokenGrammar(masked.types)
        return masked.texts, masked.mappings

    async def aclose(self) -> None:
        await self.remote.aclose()


async def open_masking(
    db_url: str | None, redis_url: str | None, *, follow_config: bool
) -> LocalMasking | RemoteMasking:
    """Remote when ACCORD_ADDR and ACCORD_TOKEN are set and no database URL is (given or in ACCORD_DB_URL)."""
    env = environ.current()
    addr = remote_addr(None, db_url, env)
    if addr is not None:
        return RemoteMasking(RemoteVault.open(addr, env.token or ""))
    from accord.vault.shared import SharedVault

    shared = await SharedVault.from_url(db_url, redis_url, follow_config=follow_config)
    return LocalMasking(shared.vault, shared.aclose)
