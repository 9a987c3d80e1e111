"""The vault through an accord server (/api/vault): what a masking proxy uses when it has no database.

Plain data in and out (texts, mappings, type names): the proxy builds its token grammar from the types.
A batch goes in one call unless its JSON is larger than a server takes in one request body
(``MAX_BATCH_BYTES``); then in as few calls as fit. Errors are the server's, decoded into the classes of
core/errors.py (``PermissionDeniedError``, ``AuthenticationError``, ``RequestTooLargeError`` for a batch with
more than ``max_new`` values, ...);
no server reachable is ``ServerUnreachableError`` (a ``StoreUnavailableError``) naming the addresses.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from accord.core.errors import AuthenticationError, BadRequestError, RemoteError
from accord.remote.servers import Servers, parse_addresses

__all__ = ["MAX_BATCH_BYTES", "Masked", "RemoteVault"]

# The server refuses bodies over 1 MiB (server/middleware.py); leave room for the envelope and escaping.
MAX_BATCH_BYTES = 900 * 1024


@dataclass(frozen=True)
class Masked:
    texts: list[str]
    mappings: dict[str, str]
    types: frozenset[str] = field(default_factory=frozenset)  # every token type the server's vault knows


class RemoteVault:
    """``mask`` / ``unmask`` / ``types`` over HTTP. ``token=`` on a call sends that token instead of this
    client's own (a proxy passing its caller's token on, so the server's rules decide per caller)."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers

    @classmethod
    def open(cls, addr: str | Sequence[str], token: str) -> RemoteVault:
        """No call yet: a proxy starts while its servers are down, and says so per request."""
        return cls(Servers(parse_addresses(addr), token))

    async def mask(
        self, texts: Sequence[str], scope: str, *, max_new: int | None = None, token: str | None = None
    ) -> Masked:
        """All ``texts`` masked (in one call when they fit one request body)."""
        out: list[str] = []
        mappings: dict[str, str] = {}
        types: frozenset[str] = frozenset()
        for batch in _batches(texts) or [[]]:
            body: dict[str, Any] = {"scope": scope, "texts": batch}
            if max_new is not None:
                body["max_new"] = max_new
            answer = await self._call("/api/vault/mask", body, token)
            out += _strings(answer, "texts", len(batch))
            mappings.update(_mapping(answer.get("mappings")))
            types = frozenset(_strings(answer, "types", None)) or types
        return Masked(out, mappings, types)

    async def unmask(
        self, texts: Sequence[str], scope: str, *, only: Collection[str] | None = None, token: str | None = None
    ) -> list[str]:
        out: list[str] = []
        for batch in _batches(texts):
            body: dict[str, Any] = {"scope": scope, "texts": batch}
            if only is not None:
                body["only"] = sorted(only)
            out += _strings(await self._call("/api/vault/unmask", body, token), "texts", len(batch))
        return out

    async def types(self, scope: str, *, token: str | None = None) -> frozenset[str]:
        _check_token(token)
        answer = await self.servers.call("GET", "/api/vault/types", params={"scope": scope}, token=token)
        return frozenset(_strings(_object(answer), "types", None))

    async def _call(self, path: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        _check_token(token)
        return _object(await self.servers.call("POST", path, body=body, token=token))

    async def aclose(self) -> None:
        await self.servers.aclose()


def _check_token(token: str | None) -> None:
    if token is not None and not (token and token.isascii() and token.isprintable()):
        raise AuthenticationError("the accord token holds characters an HTTP header cannot carry (it is not shown)")


def _batches(texts: Sequence[str]) -> list[list[str]]:
    """Consecutive runs of texts whose JSON fits one request body; a single text too large is refused."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for text in texts:
        cost = len(json.dumps(text)) + 1
        if cost > MAX_BATCH_BYTES:
            raise BadRequestError(
                f"one text is {cost} bytes as JSON, more than an accord server takes in a request "
                f"({MAX_BATCH_BYTES}); nothing was masked or sent",
                status=413,
                code="text_too_large",
            )
        if current and size + cost > MAX_BATCH_BYTES:
            batches.append(current)
            current, size = [], 0
        current.append(text)
        size += cost
    if current:
        batches.append(current)
    return batches


def _object(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise RemoteError("the server's vault answer is not a JSON object", status=502)
    return answer


def _strings(answer: dict[str, Any], name: str, count: int | None) -> list[str]:
    value = answer.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RemoteError(f"the server's vault answer has no list of strings {name!r}", status=502)
    if count is not None and len(value) != count:
        raise RemoteError(f"the server's vault answer has {len(value)} {name}, not {count}", status=502)
    return value


def _mapping(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RemoteError("the server's vault answer has no mappings object", status=502)
    return value
