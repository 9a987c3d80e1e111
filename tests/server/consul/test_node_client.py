"""The real npm `consul` package, running seed 001's client logic (tests/node), against `accord serve`.

KV first and the healthy catalog second for a service URL, JSON config values, and a watch that
sees a change made by another client: what a Node service of that team does at start and at run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import consul
import pytest

from tests.harness import AccordServer, AccordServers, wait_until

NODE_DIR = Path(__file__).resolve().parents[2] / "node"


def _node_env(server: AccordServer, **extra: str) -> dict[str, str]:
    assert server.token
    return {**os.environ, "ACCORD_TEST_PORT": str(server.port), "ACCORD_TEST_TOKEN": server.token, **extra}


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is not installed: the Node client tests need it (apt-get install nodejs)"
    assert (NODE_DIR / "node_modules" / "consul").is_dir(), "run `npm ci --prefix tests/node` (scripts/test does)"
    return node


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def server(accord_servers: AccordServers, tmp_path: Path) -> AccordServer:
    return accord_servers.start(f"sqlite+aiosqlite:///{tmp_path}/accord.db", "", expect_token=True)


def test_service_urls_config_and_writes(server: AccordServer) -> None:
    c = consul.Consul(port=server.port, token=server.token)
    c.kv.put("blog/services/chromadb/url", "http://chroma.internal:8000")
    c.agent.service.register(
        "ai-gateway", service_id="gw-1", address="10.0.0.5", port=8080, check=consul.Check.ttl("30s")
    )
    c.agent.check.ttl_pass("service:gw-1")
    c.agent.service.register(
        "ai-gateway", service_id="gw-2", address="10.0.0.6", port=8080, check=consul.Check.ttl("30s")
    )
    c.kv.put("blog/config/cors/allowed_origins", json.dumps(["https://blog.example"]))

    done = subprocess.run(
        [_node(), "scenario.mjs"], cwd=NODE_DIR, env=_node_env(server), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr + done.stdout
    seen = _lines(done.stdout)
    assert {"service": "chromadb", "url": "http://chroma.internal:8000"} in seen  # KV pin first
    assert {"service": "ai-gateway", "url": "http://10.0.0.5:8080"} in seen  # only the passing instance
    assert {"service": "missing", "error": "Service not found: missing"} in seen
    assert {"config": "cors/allowed_origins", "value": ["https://blog.example"]} in seen  # JSON parsed
    assert {"config": "domains/none", "value": "fallback"} in seen  # a 404 is "missing", not an error
    assert {"set": True} in seen
    leader = next(line["leader"] for line in seen if "leader" in line)
    assert leader == c.status.leader()
    _index, written = c.kv.get("blog/config/from-node")
    assert written is not None and json.loads(written["Value"]) == {"ok": True}


def test_watch_key_sees_a_change_made_elsewhere(server: AccordServer) -> None:
    c = consul.Consul(port=server.port, token=server.token)
    c.kv.put("blog/config/feature", json.dumps({"on": False}))
    watcher = subprocess.Popen(
        [_node(), "scenario.mjs", "watch"],
        cwd=NODE_DIR,
        env=_node_env(server, ACCORD_TEST_CHANGES="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())
        assert first == {"watching": {"on": False}}
        c.kv.put("blog/config/feature", json.dumps({"on": True}))
        second = json.loads(watcher.stdout.readline())
        assert second == {"change": {"on": True}}
        wait_until(lambda: watcher.poll() is not None, timeout=10, what="the node watcher to exit")
        assert watcher.returncode == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.communicate()  # reads and closes both pipes
