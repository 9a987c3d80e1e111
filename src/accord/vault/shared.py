"""Opening the shared vault from URLs: the one way the CLI and the proxy (and an application) do it.

The vault then follows the shared ``vault.*`` settings (custom patterns, retention) through a
LiveConfig on the same database, so every process masks alike and picks up a change at once.
"""

from __future__ import annotations

from accord.config.connect import connect
from accord.config.live import LiveConfig
from accord.vault.settings import VaultSettings
from accord.vault.vault import DEFAULT_START_TIMEOUT_S, Vault

__all__ = ["SharedVault"]


class SharedVault:
    """A vault and the LiveConfig it follows (None with ``follow_config=False``); closes both."""

    def __init__(self, vault: Vault, live: LiveConfig | None) -> None:
        self.vault = vault
        self.live = live

    @classmethod
    async def from_url(
        cls,
        db_url: str | None = None,
        redis_url: str | None = None,
        *,
        follow_config: bool = True,
        watch: bool = True,
        use_env: bool = True,
        sweep: bool = True,
        start_timeout: float | None = None,
    ) -> SharedVault:
        """URLs default to ACCORD_DB_URL / ACCORD_REDIS_URL. ``watch=False`` suits a one-shot command: the
        settings are read once. ``sweep=False`` leaves expiry to the long-running processes."""
        budget = DEFAULT_START_TIMEOUT_S if start_timeout is None else start_timeout
        if not follow_config:
            return cls(await Vault.connect(db_url, redis_url, sweep=sweep, start_timeout=budget), None)
        live = await connect(
            db_url, redis_url, groups=[VaultSettings], watch=watch, use_env=use_env, start_timeout=start_timeout
        )
        try:
            vault = await Vault.connect(redis_url=redis_url, live=live, sweep=sweep, start_timeout=budget)
        except BaseException:
            await live.aclose()
            raise
        return cls(vault, live)

    async def aclose(self) -> None:
        try:
            await self.vault.aclose()
        finally:
            if self.live is not None:
                await self.live.aclose()

    async def __aenter__(self) -> SharedVault:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()
