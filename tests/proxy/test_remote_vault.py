"""The masking proxy over remote mode: a real `accord serve` holds the vault; the real proxy process has only
ACCORD_ADDR and ACCORD_TOKEN (no database URL, no Redis, no master key) and the echo upstream is the model.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness import EchoUpstream, HttpProcess, free_port
from tests.harness.accord_server import AccordServer, AccordServers
from tests.harness.http_process import child_env
from tests.proxy.echo_seed import current_seed, track_upstream
from tests.proxy.proxy_harness import ECHO, SHIM, TOKEN_RE, openai_body, read_answer

TEXT = "Restart arn:aws:eks:us-east-1:123456789012:cluster/prod-eu and mail ops@example.com"
ORIGINALS = ("arn:aws:eks:us-east-1:123456789012:cluster/prod-eu", "ops@example.com")
CHAT = "/v1/chat/completions"


@dataclass
class RemoteStack:
    server: AccordServer
    upstream: EchoUpstream
    tokens: dict[str, str]  # name -> secret
    workdir: Path
    children: list[HttpProcess]

    def proxy(self, token: str, *extra: str) -> HttpProcess:
        """A proxy process whose environment names the server and a token, and nothing else of accord's."""
        port = free_port()
        env = {k: v for k, v in child_env().items() if not k.startswith("ACCORD_")}  # not even the master key
        env |= {"ACCORD_ADDR": self.server.addr, "ACCORD_TOKEN": token}
        args = ["proxy", "--upstream", self.upstream.url, "--port", str(port), "--timeout", "20", *extra]
        workdir = self.workdir / f"proxy-{len(self.children)}"
        child = HttpProcess(workdir, [sys.executable, str(SHIM), *args, "--log-level", "warning"], env, port=port)
        self.children.append(child)
        child.start()
        return child


def _token(server: AccordServer, name: str, rules: list[str], *, reveal: bool = False) -> str:
    with server.admin() as admin:
        created = admin.post("/api/tokens", json={"name": name, "rules": rules, "reveal_secrets": reveal})
        created.raise_for_status()
        secret: str = created.json()["secret"]
        return secret


@pytest.fixture
def stack(accord_servers: AccordServers, sqlite_url: str, tmp_path: Path) -> Iterator[RemoteStack]:
    server = accord_servers.start(sqlite_url, "", expect_token=True)
    tokens = {
        "masker": _token(server, "masker", ["vault/=write"]),
        "revealer": _token(server, "revealer", ["vault/=write"], reveal=True),
        "reader": _token(server, "reader", ["vault/=read", "config/=write"], reveal=True),
    }
    upstream = track_upstream(EchoUpstream(tmp_path / "echo", ECHO, sys.executable, seed=current_seed()))
    upstream.start()
    children: list[HttpProcess] = [upstream]
    try:
        yield RemoteStack(server, upstream, tokens, tmp_path, children)
    finally:
        for child in children:
            child.close()


def _ask(proxy: HttpProcess, text: str, *, stream: bool, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(timeout=60) as client:
        return client.post(proxy.url + CHAT, json=openai_body(text, stream=stream), headers=headers or {})


def test_the_proxy_masks_through_the_server_and_unmasks_its_answer(stack: RemoteStack) -> None:
    proxy = stack.proxy(stack.tokens["masker"])
    for stream in (False, True):
        answer = read_answer("openai", _ask(proxy, TEXT, stream=stream), stream=stream)
        assert answer.texts[0] == TEXT  # the originals are back in the answer
    received = stack.upstream.received()
    assert len(received) == 2
    sent = [json.loads(record["body"])["messages"][-1]["content"] for record in received]
    assert sent[0] == sent[1], "the same values got the same tokens"
    assert not [value for value in ORIGINALS if value in received[0]["body"]], "the model saw an original"
    tokens = TOKEN_RE.findall(sent[0])
    assert sorted(tokens) == ["AWS_EKS_CLUSTER_001", "EMAIL_001"]
    assert not (proxy.workdir / "accord.db").exists() and not (proxy.workdir / "accord.key").exists()

    # The server's vault holds the mappings: a token with reveal rights unmasks what the model saw.
    with stack.server.client(stack.tokens["revealer"]) as client:
        unmasked = client.post("/api/vault/unmask", json={"texts": [sent[0], "no tokens"]})
        assert unmasked.status_code == 200, unmasked.text
        assert unmasked.json()["texts"] == [TEXT, "no tokens"]
        only = client.post("/api/vault/unmask", json={"texts": [sent[0]], "only": ["EMAIL_001"]})
        assert only.json()["texts"] == [TEXT.replace(ORIGINALS[0], "AWS_EKS_CLUSTER_001")]
        types = client.get("/api/vault/types").json()["types"]
        assert {"AWS_EKS_CLUSTER", "EMAIL"} <= set(types)


def test_unmask_needs_reveal_and_mask_needs_write(stack: RemoteStack) -> None:
    masked_text = "EMAIL_001 and AWS_EKS_CLUSTER_001"
    with stack.server.client(stack.tokens["masker"]) as masker:
        masked = masker.post("/api/vault/mask", json={"texts": [TEXT, "ops@example.com"]})
        assert masked.status_code == 200, masked.text
        assert masked.json()["texts"] == ["Restart AWS_EKS_CLUSTER_001 and mail EMAIL_001", "EMAIL_001"]
        refused = masker.post("/api/vault/unmask", json={"texts": [masked_text]})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "PermissionDeniedError"
        assert "reveal" in refused.json()["detail"] and "vault/default/" in refused.json()["detail"]
        assert "ops@example.com" not in refused.text
    with stack.server.client(stack.tokens["reader"]) as reader:
        refused = reader.post("/api/vault/mask", json={"texts": ["mail new@example.com"]})
        assert refused.status_code == 403, refused.text
        assert "may not write" in refused.json()["detail"]
        assert reader.post("/api/vault/unmask", json={"texts": [masked_text]}).json()["texts"] == [
            "ops@example.com and arn:aws:eks:us-east-1:123456789012:cluster/prod-eu"
        ]
    with stack.server.client(stack.tokens["revealer"]) as revealer:  # the reader's refused mask stored nothing
        assert revealer.post("/api/vault/mask", json={"texts": ["new@example.com"]}).json()["texts"] == ["EMAIL_002"]
        other_scope = revealer.post("/api/vault/unmask", json={"texts": [masked_text], "scope": "tenant-2"})
        assert other_scope.json()["texts"] == [masked_text], "mappings are per scope"

    # The proxy with a token that may only read: its masking is refused, in OpenAI's error shape, nothing sent.
    proxy = stack.proxy(stack.tokens["reader"])
    answer = _ask(proxy, TEXT, stream=False)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "permission_denied"
    assert "vault/default/" in answer.json()["error"]["message"]
    assert stack.upstream.received() == []


def test_with_require_token_the_server_checks_each_callers_token(stack: RemoteStack) -> None:
    proxy = stack.proxy(stack.tokens["masker"], "--require-token")
    none = _ask(proxy, TEXT, stream=False)
    assert none.status_code == 401 and none.json()["error"]["code"] == "authentication_failed", none.text
    bad = _ask(proxy, TEXT, stream=False, headers={"X-Accord-Token": "acc_not_a_real_token_0000000000"})
    assert bad.status_code == 401, bad.text
    reader = _ask(proxy, TEXT, stream=False, headers={"X-Accord-Token": stack.tokens["reader"]})
    assert reader.status_code == 403 and reader.json()["error"]["code"] == "permission_denied", reader.text
    with httpx.Client(timeout=30) as client:  # a pass-through GET is checked too
        models = client.get(proxy.url + "/v1/models", headers={"X-Accord-Token": stack.tokens["reader"]})
        assert models.status_code == 403, models.text
    assert stack.upstream.received() == []
    allowed = _ask(proxy, TEXT, stream=False, headers={"X-Accord-Token": stack.tokens["revealer"]})
    assert read_answer("openai", allowed, stream=False).texts[0] == TEXT
    [record] = stack.upstream.received()
    assert "x-accord-token" not in record["headers"]


def test_with_the_server_down_the_proxy_names_what_it_could_not_reach(stack: RemoteStack) -> None:
    proxy = stack.proxy(stack.tokens["masker"])
    assert read_answer("openai", _ask(proxy, TEXT, stream=False), stream=False).texts[0] == TEXT
    stack.server.kill()
    for stream in (False, True):
        answer = _ask(proxy, "mail ops@example.com", stream=stream)
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "vault_unavailable"
        assert "cannot reach any accord server" in error["message"]
        assert stack.server.addr.removeprefix("http://") in error["message"]
    assert len(stack.upstream.received()) == 1, "nothing was sent while the vault was unreachable"
    assert stack.tokens["masker"] not in proxy.log_path.read_text(errors="replace")
