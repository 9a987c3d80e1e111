"""Bearer tokens stored as entries under ``acl/tokens/<name>``, indexed in memory by hash.

Tokens live in the versioned store like everything else, so creating or revoking one reaches
every server process through the bus within milliseconds, and each change is in history. Only
a SHA-256 hash of a token is stored: tokens are 256 random bits, so a fast hash is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from accord.auth.policy import MANAGEMENT, Policy, PolicyError
from accord.core.errors import AccordError, ConflictError, NotFoundError, PermissionDeniedError
from accord.core.errors import TokenError as TokenError
from accord.replica.replica import Replica
from accord.store.types import Entry, PutItem, WriteContext

TOKENS_PREFIX = "acl/tokens/"
TOKEN_SCHEME = "acc_"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


@dataclass(frozen=True)
class Token:
    """A token's public description; the secret itself is never stored."""

    name: str
    accessor: str
    policy: Policy
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    secret_hash: str = field(default="", repr=False)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "accessor": self.accessor,
            **self.policy.to_json(),
            "created_at": self.created_at,
            "created_by": self.created_by,
            "expires_at": self.expires_at,
            "expired": self.expired(),
        }


def check_token_name(name: str) -> str:
    """Names become store keys (acl/tokens/<name>) and CLI arguments: keep them plain."""
    if not _NAME.match(name):
        raise TokenError(f"invalid token name {json.dumps(name)}: use 1-100 of [A-Za-z0-9_.-]")
    return name


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenIndex:
    """Authenticates presented secrets against the tokens of a replica of acl/tokens/.

    Writes go through the same replica, so a token this index creates or revokes takes effect here
    as soon as the call returns, and in every other process once the bus (or the revision check) delivers it.
    """

    def __init__(self, replica: Replica) -> None:
        if not replica.covers(TOKENS_PREFIX):
            raise AccordError("the token index needs a replica of acl/ (connect with extra_prefixes=('acl/',))")
        self._replica = replica
        self._by_hash: dict[str, Token] = {}
        self._by_name: dict[str, Token] = {}
        for entry in replica.entries(TOKENS_PREFIX):
            self._on_entry(entry.key, entry)
        replica.on_entry(self._on_entry)

    def authenticate(self, secret: str) -> Token | None:
        """The live, unexpired token for ``secret``, else None. The final comparison is constant-time."""
        presented = hash_secret(secret)
        token = self._by_hash.get(presented)
        if token is None or not hmac.compare_digest(token.secret_hash, presented) or token.expired():
            return None
        return token

    def still_valid(self, token: Token) -> bool:
        """Whether ``token`` (authenticated earlier) is neither revoked nor expired now: long streams re-check."""
        current = self._by_hash.get(token.secret_hash)
        return current is not None and current.name == token.name and not current.expired()

    def list(self) -> list[Token]:
        return sorted(self._by_name.values(), key=lambda t: t.name)

    def get(self, name: str) -> Token:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(f"no token named {json.dumps(name)}") from None

    async def create(
        self,
        name: str,
        policy: Policy,
        *,
        ttl: timedelta | None = None,
        ctx: WriteContext | None = None,
        granted_by: Token | None = None,
    ) -> tuple[Token, str]:
        """A new token and its secret (shown once). Names are unique: creation is create-only in the store.

        ``granted_by`` is the token asking (None: an operator with database access); it can only
        hand on access it holds itself, so no token mints a stronger one.
        """
        check_token_name(name)
        if granted_by is not None:
            check_grant(granted_by, policy, "create")
        if ttl is not None and ttl.total_seconds() <= 0:
            raise TokenError("a token's ttl must be positive")
        secret = TOKEN_SCHEME + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        creator = ctx.actor if ctx and ctx.actor else ""
        token = Token(name, secrets.token_hex(8), policy, now, creator, now + ttl if ttl else None, hash_secret(secret))
        item = PutItem(TOKENS_PREFIX + name, _encode(token), expect_version=0)
        try:
            await self._replica.put_keys([item], ctx=_ctx(ctx, "token.create"))
        except ConflictError:
            raise TokenError(f"a token named {json.dumps(name)} already exists") from None
        return token, secret

    async def revoke(self, name: str, *, ctx: WriteContext | None = None, granted_by: Token | None = None) -> Token:
        """Revoke ``name``; a token may revoke only tokens it could have created (none stronger than itself)."""
        token = self.get(name)
        if granted_by is not None:
            check_grant(granted_by, token.policy, "revoke")
        await self._replica.delete_key(TOKENS_PREFIX + name, ctx=_ctx(ctx, "token.revoke"))
        return token

    async def bootstrap(self, *, ctx: WriteContext | None = None) -> tuple[Token, str]:
        """A new management token (every prefix writable, secrets revealable) under a fresh name."""
        name = "management" if "management" not in self._by_name else f"management-{secrets.token_hex(3)}"
        return await self.create(name, MANAGEMENT, ctx=_ctx(ctx, "token.bootstrap"))

    def _on_entry(self, key: str, entry: Entry | None) -> None:
        if not key.startswith(TOKENS_PREFIX):
            return
        name = key[len(TOKENS_PREFIX) :]
        old = self._by_name.pop(name, None)
        if old is not None:
            self._by_hash.pop(old.secret_hash, None)
        if entry is not None:
            token = _decode(name, entry.value)
            if token is not None:
                self._by_name[name] = token
                self._by_hash[token.secret_hash] = token


def check_grant(granter: Token, policy: Policy, verb: str) -> None:
    """Refuse, naming what is missing, when ``policy`` grants more than ``granter`` holds."""
    missing = granter.policy.uncovered(policy)
    if missing:
        raise PermissionDeniedError(
            f"token {json.dumps(granter.name)} may not {verb} a token with more access than its own: "
            + "; ".join(missing)
        )


def _ctx(ctx: WriteContext | None, action: str) -> WriteContext:
    return WriteContext(ctx.actor if ctx else "", action, ctx.request_id if ctx else None)


def _encode(token: Token) -> bytes:
    body = {
        "accessor": token.accessor,
        "hash": token.secret_hash,
        "policy": token.policy.to_json(),
        "created_at": token.created_at.isoformat(),
        "created_by": token.created_by,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _decode(name: str, raw: bytes) -> Token | None:
    try:
        body = json.loads(raw)
        expires = body.get("expires_at")
        return Token(
            name=name,
            accessor=body["accessor"],
            policy=Policy.from_json(body["policy"]),
            created_at=datetime.fromisoformat(body["created_at"]),
            created_by=body.get("created_by", ""),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            secret_hash=body["hash"],
        )
    except (ValueError, KeyError, TypeError, PolicyError):
        return None
