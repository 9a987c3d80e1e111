"""Issue 8 item 7: an import or migrate dry run by a token without reveal rights cannot test a guess at a
stored secret: the answer is the same whether the guess is right or wrong (real server, CLI over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.cli.cli_helpers import SECRET, AccordServer, ServerFactory, run_cli

WRONG = "sk-live-0123456789abXXef"  # same length, same mask as SECRET: only the middle differs


@pytest.fixture
def server(llm_db: str, start_server: ServerFactory) -> AccordServer:
    return start_server(llm_db)


def _token(server: AccordServer, *, reveal: bool) -> str:
    answer = httpx.post(
        f"{server.addr}/api/tokens",
        json={"name": f"writer-{int(reveal)}", "rules": ["config/=write"], "reveal_secrets": reveal},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    secret: str = answer.json()["secret"]
    return secret


def _post(server: AccordServer, token: str, route: str, body: object) -> dict[str, object]:
    answer = httpx.post(
        f"{server.addr}/api/config/{route}",
        params={"dry_run": "true"},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, object] = answer.json()
    return data


def test_a_dry_run_without_reveal_answers_the_same_for_a_right_and_a_wrong_guess(
    server: AccordServer, tmp_path: Path
) -> None:
    blind = _token(server, reveal=False)
    for route, shape in (
        ("import", lambda guess: {"settings": {"llm.api_key": guess}}),
        ("migrate", lambda guess: {"llm": {"api_key": guess}}),
    ):
        right = _post(server, blind, route, shape(SECRET))
        wrong = _post(server, blind, route, shape(WRONG))
        assert right == wrong, (route, right, wrong)
        assert SECRET not in json.dumps(right)
    imported = _post(server, blind, "import", {"settings": {"llm.api_key": SECRET}})
    assert imported["changes"] == [
        {
            "path": "llm.api_key",
            "old": "sk-l****cdef",
            "new": "****",
            "note": "would be written (not compared: no reveal right)",
        }
    ]
    migrated = _post(server, blind, "migrate", {"llm": {"api_key": SECRET}})
    assert migrated["not_compared"] == ["llm.api_key"] and migrated["unchanged"] == []

    # the CLI over HTTP prints the same for both guesses
    outputs = []
    for guess in (SECRET, WRONG):
        file = tmp_path / "guess.json"
        file.write_text(json.dumps({"llm.api_key": guess}))
        done = run_cli("config", "import", str(file), "--dry-run", addr=server.addr, token=blind)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and "not compared" in outputs[0]


def test_a_token_with_reveal_still_sees_an_unchanged_secret(server: AccordServer) -> None:
    seeing = _token(server, reveal=True)
    same = _post(server, seeing, "import", {"settings": {"llm.api_key": SECRET}})
    assert same["changes"] == [] and same["unchanged"] == 1
    migrated = _post(server, seeing, "migrate", {"llm": {"api_key": SECRET}})
    assert migrated["unchanged"] == ["llm.api_key"] and migrated["not_compared"] == []
