"""The vault: reversible masking of sensitive values, shared by every instance on one database (and Redis).

``mask`` replaces each detected value with a token such as ``AWS_EKS_CLUSTER_001``; the same value
in the same scope gets the same token on every instance and after every restart, and a new value
gets the next number of its type. ``unmask`` puts the originals back. Text that already contains a
token-shaped string is masked too (as ``VAULT_LITERAL_nnn``), so a token a caller typed comes back
as typed and is never unmasked into somebody else's original.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from accord.bus.redis_url import resolve_redis_url
from accord.config.live import LiveConfig
from accord.config.values import SettingChange
from accord.core.crypto import Cipher, cipher_for_database
from accord.core.errors import AccordError, RequestTooLargeError, StoreUnavailableError, UnknownSettingError
from accord.core.retry import retry_for
from accord.store.dialect import sqlite_holds_sealed
from accord.store.engine import create_engine, read_tx, resolve_db_url
from accord.store.kv import engine_of
from accord.store.migrate import upgrade
from accord.vault._redis.gate import RedisGate
from accord.vault._sql import sequences as sql_sequences
from accord.vault._sql import statements as sql
from accord.vault.backends import counters_for, mappings_for
from accord.vault.detectors import DetectorSet, custom_detectors
from accord.vault.keypin import pin_fingerprint_key
from accord.vault.mappings import Mappings, Resolution
from accord.vault.patterns import BUILTIN_DETECTORS
from accord.vault.records import VAULT_NAMESPACE, Item, touch_interval
from accord.vault.sealing import Sealer
from accord.vault.sequences import DEFAULT_LEASE, Sequences
from accord.vault.settings import DEFAULT_MAPPING_TTL_S
from accord.vault.tokens import TokenGrammar
from accord.vault.types import (
    DEFAULT_SCOPE,
    InvalidInputError,
    MaskResult,
    VaultError,
    VaultStats,
    check_scope,
    check_token_type,
    ensure_text,
)

__all__ = ["Vault"]

log = logging.getLogger("accord.vault")
DEFAULT_START_TIMEOUT_S = 30.0
DEFAULT_HOT_TOKENS = 10_000
HOT_HOLD_S = 1.0
_DOWN = (StoreUnavailableError,)


class Vault:
    """Create with ``await Vault.connect(...)``; close with ``aclose()`` or ``async with``."""

    def __init__(
        self,
        engine: AsyncEngine,
        gate: RedisGate,
        cipher: Cipher,
        *,
        lease: int = DEFAULT_LEASE,
        mapping_ttl_seconds: int = DEFAULT_MAPPING_TTL_S,
        custom_patterns: Mapping[str, str] | None = None,
        hot_tokens: int = DEFAULT_HOT_TOKENS,
        reload_keys: Callable[[], Cipher] | None = None,
    ) -> None:
        self.engine = engine
        counters, redis_counters = counters_for(engine, gate, lease=lease)
        self.sequences = Sequences(engine, counters, lease=lease)
        self._gate = gate
        sealer = Sealer(cipher, reload=reload_keys)
        self._mappings = Mappings(mappings_for(engine, gate, sealer, redis_counters), sealer, hot_tokens=hot_tokens)
        self._known_types: set[str] = set()
        self._custom: dict[str, str] = {}
        self._ttl = 0
        self._detectors = DetectorSet(BUILTIN_DETECTORS)
        self._owns_engine = True
        self._unsubscribe: Any = None
        self._sweeper: asyncio.Task[None] | None = None
        self.set_mapping_ttl(mapping_ttl_seconds)
        self.set_custom_patterns(custom_patterns or {})

    @classmethod
    async def connect(
        cls,
        db_url: str | None = None,
        redis_url: str | None = None,
        live: LiveConfig | None = None,
        *,
        cipher: Cipher | None = None,
        lease: int = DEFAULT_LEASE,
        mapping_ttl_seconds: int | None = None,
        custom_patterns: Mapping[str, str] | None = None,
        sweep: bool = True,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
        hot_tokens: int = DEFAULT_HOT_TOKENS,
    ) -> Vault:
        """Open the vault. URLs default to ACCORD_DB_URL / ACCORD_REDIS_URL (then the embedded SQLite file).

        With ``live`` (a LiveConfig that declares ``VaultSettings``), custom patterns and retention come
        from the shared config and follow its changes; its database is used unless ``db_url`` is given.
        The master key comes from ``cipher``, else ACCORD_MASTER_KEY, else a key file beside a SQLite file.
        ``hot_tokens`` bounds the in-memory cache of recently unmasked tokens (0: none; see HotOriginals).
        """
        if live is not None and (mapping_ttl_seconds is not None or custom_patterns is not None):
            raise VaultError("with a LiveConfig, retention and custom patterns come from it: set vault.* there")
        engine, load_keys, shared = _engine_for(db_url, live)
        gate = RedisGate(resolve_redis_url(redis_url))
        reload_keys = None if cipher is not None else load_keys
        try:
            cipher = cipher or load_keys()
            await retry_for(lambda: upgrade(engine), what="the vault database", budget_s=start_timeout, retry_on=_DOWN)
            cipher = await pin_fingerprint_key(engine, cipher)
            await gate.bind(engine)
            ttl = DEFAULT_MAPPING_TTL_S if mapping_ttl_seconds is None else mapping_ttl_seconds
            vault = cls(
                engine,
                gate,
                cipher,
                lease=lease,
                mapping_ttl_seconds=ttl,
                custom_patterns=custom_patterns,
                hot_tokens=hot_tokens,
                reload_keys=reload_keys,
            )
            vault._owns_engine = not shared
            if live is not None:
                vault._follow(live)
            await vault.refresh_types()
        except BaseException:
            await gate.aclose()
            if not shared:
                await engine.dispose()
            raise
        if sweep:
            vault._sweeper = asyncio.create_task(vault._sweep_forever(), name="accord-vault-sweeper")
        return vault

    # ----- the API -------------------------------------------------------------------------------

    async def mask(self, text: str | bytes, scope: str = DEFAULT_SCOPE, *, max_new: int | None = None) -> MaskResult:
        """Replace every detected value with its token; persisted before this returns.

        ``max_new``: more distinct values than this raises ``RequestTooLargeError`` before anything is stored,
        counted in the same detection pass that masks (a caller's separate count would detect twice).
        """
        text = ensure_text(text)
        scope = check_scope(scope)
        detections = self._detectors.detect(text)
        if not detections:
            return MaskResult(text, {})
        items: dict[tuple[str, str], Item] = {}
        for found in detections:
            key = (found.token_type, found.value)
            if key not in items:
                items[key] = Item(found.token_type, found.value, self._fingerprint(scope, *key))
        if max_new is not None and len(items) > max_new:
            raise too_many_values(max_new)
        tokens = await self._mappings.tokens_for(scope, list(items.values()), self._ttl)
        pieces: list[str] = []
        mappings: dict[str, str] = {}
        position = 0
        for found in detections:
            token = tokens[items[(found.token_type, found.value)].field]
            pieces += [text[position : found.start], token]
            mappings[token] = found.value
            position = found.end
        pieces.append(text[position:])
        self._learn_types({item.token_type for item in items.values()})
        return MaskResult("".join(pieces), mappings)

    async def unmask(
        self, text: str | bytes, scope: str = DEFAULT_SCOPE, *, only: Collection[str] | None = None
    ) -> str:
        """Put originals back. Unknown or expired tokens stay as they are (and are counted in ``stats``).

        ``only`` restricts unmasking to those tokens, for example the ones the request's own masking
        produced, so a model cannot be talked into revealing other originals of the scope.
        """
        text = ensure_text(text)
        scope = check_scope(scope)
        matches = self._detectors.grammar.finditer(text)
        if not matches:
            return text
        wanted = list(dict.fromkeys(m.token for m in matches if only is None or m.token in only))
        if not wanted:
            return text
        resolution = await self.resolve(wanted, scope)
        pieces: list[str] = []
        position = 0
        for match in matches:
            original = resolution.originals.get(match.token)
            if original is not None:
                pieces += [text[position : match.start], original]
                position = match.end
        pieces.append(text[position:])
        return "".join(pieces)

    async def resolve(self, tokens: Collection[str], scope: str = DEFAULT_SCOPE) -> Resolution:
        """Originals of ``tokens``, plus which are missing and which expired (counted in ``stats``)."""
        return await self._mappings.originals_for(check_scope(scope), list(tokens), self._ttl)

    async def stats(self, scope: str | None = None) -> VaultStats:
        async with read_tx(self.engine) as conn:
            return await sql.stats(conn, None if scope is None else check_scope(scope))

    async def expire_idle(self, *, limit: int = 5000) -> int:
        """Expire mappings idle longer than the retention; returns how many. Runs in the background too."""
        if self._ttl <= 0:
            return 0
        expired = await self._mappings.backend.expire_idle(self._ttl, limit=limit)
        if expired:
            self._mappings.hot.clear()
        return expired

    # ----- configuration -------------------------------------------------------------------------

    @property
    def detectors(self) -> DetectorSet:
        return self._detectors

    @property
    def grammar(self) -> TokenGrammar:
        return self._detectors.grammar

    @property
    def mapping_ttl_seconds(self) -> int:
        return self._ttl

    def set_mapping_ttl(self, seconds: int) -> None:
        if not isinstance(seconds, int) or seconds < 0:
            raise InvalidInputError(f"mapping_ttl_seconds must be an int >= 0, got {json.dumps(seconds)}")
        self._ttl = seconds
        # a tenth of the retention at most, so a held token never outlives its mapping (see HotOriginals)
        self._mappings.hot.hold = min(HOT_HOLD_S, seconds / 10) if seconds else HOT_HOLD_S
        self._mappings.hot.clear()

    def set_custom_patterns(self, patterns: Mapping[str, str]) -> list[str]:
        """Replace the custom detectors; returns problems with entries that were skipped.

        Types of removed patterns stay known: their tokens already in circulation must keep unmasking.
        """
        custom, problems = custom_detectors(patterns)
        self._known_types |= self._detectors.types
        self._custom = dict(patterns)
        self._detectors = DetectorSet((*BUILTIN_DETECTORS, *custom), literal_types=self._known_types)
        return problems

    async def refresh_types(self) -> None:
        """Learn token types other instances created (their tokens must unmask here too)."""
        names = await sql_sequences.names_under(self.engine, VAULT_NAMESPACE)
        self._learn_types({name[len(VAULT_NAMESPACE) :] for name in names})

    def _learn_types(self, types: set[str]) -> None:
        """Remember every type that has tokens, so they keep unmasking after their pattern is removed."""
        new = {name for name in types - self._known_types if _valid_type(name)}
        if not new:
            return
        self._known_types |= new
        if new - self._detectors.types:
            self.set_custom_patterns(self._custom)

    def _follow(self, live: LiveConfig) -> None:
        try:
            live.get("vault.custom_patterns")
        except UnknownSettingError:
            raise VaultError(
                "the LiveConfig does not declare the vault settings: connect it with groups=[VaultSettings, ...]"
            ) from None

        def apply(_change: SettingChange | None = None) -> None:
            self.set_mapping_ttl(int(live.get("vault.mapping_ttl_seconds")))
            self.set_custom_patterns(dict(live.get("vault.custom_patterns")))

        apply()
        self._unsubscribe = live.on_change("vault.", apply)

    def _fingerprint(self, scope: str, token_type: str, original: str) -> bytes:
        return self._mappings.sealer.fingerprint(scope, token_type, original)

    # ----- lifecycle -----------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(touch_interval(self._ttl).total_seconds() * (0.5 + random.random()))
            try:
                await self.refresh_types()
                await self.expire_idle()
            except AccordError as exc:
                log.warning("vault sweep skipped: %s", exc.detail)

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self._mappings.aclose()
        await self._gate.aclose()
        if self._owns_engine:
            await self.engine.dispose()

    async def __aenter__(self) -> Vault:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


def _engine_for(db_url: str | None, live: LiveConfig | None) -> tuple[AsyncEngine, Callable[[], Cipher], bool]:
    """The LiveConfig's engine when it is given without a URL (shared, not ours to close), else our own; and how to
    load the master key chosen for that database (read again after a rotation)."""
    if live is not None and db_url is None:
        return engine_of(live.store), live.store.cipher, True
    url = resolve_db_url(db_url)
    engine = create_engine(url)
    return engine, lambda: cipher_for_database(url, holds_sealed=lambda: sqlite_holds_sealed(engine.url)), False


def _valid_type(name: str) -> bool:
    try:
        check_token_type(name)
    except InvalidInputError:
        return False
    return True


def too_many_values(max_new: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"the texts hold more than {max_new} distinct values to mask; nothing was masked")
