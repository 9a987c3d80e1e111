"""`RemoteVault` on a real `accord serve`: mask and unmask in batches, and the server's refusals as the classes
of core/errors.py (the ones a direct vault or the rest of the remote mode raise)."""

from __future__ import annotations

import pytest

from accord.core.errors import (
    AuthenticationError,
    BadRequestError,
    InvalidInputError,
    PermissionDeniedError,
    RequestTooLargeError,
    ServerUnreachableError,
)
from accord.remote.vault import MAX_BATCH_BYTES, RemoteVault
from tests.harness.accord_server import AccordServer, AccordServers


def _token(server: AccordServer, name: str, rules: list[str], *, reveal: bool = False) -> str:
    with server.admin() as admin:
        created = admin.post("/api/tokens", json={"name": name, "rules": rules, "reveal_secrets": reveal})
        created.raise_for_status()
        secret: str = created.json()["secret"]
        return secret


async def test_remote_vault_masks_unmasks_and_raises_the_servers_errors(
    accord_servers: AccordServers, sqlite_url: str
) -> None:
    server = accord_servers.start(sqlite_url, "", expect_token=True)
    revealer = _token(server, "revealer", ["vault/tenant-a/=write"], reveal=True)
    masker = _token(server, "masker", ["vault/=write"])
    vault = RemoteVault.open(server.addr, revealer)
    try:
        texts = ["mail ops@example.com", "no values here", "ops@example.com again, and dev@example.com"]
        masked = await vault.mask(texts, "tenant-a")
        assert masked.texts == ["mail EMAIL_001", "no values here", "EMAIL_001 again, and EMAIL_002"]
        assert masked.mappings == {"EMAIL_001": "ops@example.com", "EMAIL_002": "dev@example.com"}
        assert "EMAIL" in masked.types and "EMAIL" in await vault.types("tenant-a")
        assert await vault.unmask(masked.texts, "tenant-a") == texts
        assert await vault.unmask(["EMAIL_001, EMAIL_002"], "tenant-a", only={"EMAIL_002"}) == [
            "EMAIL_001, dev@example.com"
        ]
        many = [f"user{i}@example.com" for i in range(5)]
        with pytest.raises(RequestTooLargeError, match="more than 3 distinct values"):
            await vault.mask(many, "tenant-a", max_new=3)
        assert (await vault.mask(["user0@example.com"], "tenant-a")).texts == ["EMAIL_003"], "the refusal stored none"
        with pytest.raises(PermissionDeniedError, match="vault/tenant-b/"):  # its rules name tenant-a only
            await vault.mask(["x@example.com"], "tenant-b")
        with pytest.raises(PermissionDeniedError, match="reveal"):  # another caller's token, passed on per call
            await vault.unmask(["EMAIL_001"], "tenant-a", token=masker)
        with pytest.raises(AuthenticationError):
            await vault.mask(["x@example.com"], "tenant-a", token="acc_not_a_real_token_0000000000")
        with pytest.raises(InvalidInputError, match="scope"):
            await vault.mask(["x@example.com"], "bad scope!")
        with pytest.raises(BadRequestError, match="more than an accord server takes"):
            await vault.mask(["a" * (MAX_BATCH_BYTES + 1)], "tenant-a")
        big = ["ops@example.com " + "y" * 200_000 for _ in range(10)]  # 2 MB: several calls, one answer
        out = await vault.mask(big, "tenant-a")
        assert out.texts == [text.replace("ops@example.com", "EMAIL_001") for text in big]

        server.kill()
        with pytest.raises(ServerUnreachableError, match="cannot reach any accord server"):
            await vault.mask(["ops@example.com"], "tenant-a")
    finally:
        await vault.aclose()
