"""Issue 8 items 16 and 20: the same input gets the same answer on every entry point, and the CLI's output
reads one way (dotted paths, JSON-quoted values, one time style, PATH/VALUE placeholders, one-line usage
errors). Every entry point is a real one: an application process reading its environment, the Python API,
`accord` as a subprocess on the database and `accord serve` over HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import accord
from accord import Setting, SettingsGroup
from tests.cli.cli_helpers import AccordServer, ServerFactory, both, cli_env, run_cli

ROOT = Path(__file__).resolve().parents[2]


class Knobs(SettingsGroup, category="knobs"):
    enabled: bool = Setting(False, env="KNOBS_ENABLED")
    workers: int = Setting(4, ge=1, le=64, env="KNOBS_WORKERS")
    ratio: float = Setting(0.5, ge=0, le=1, env="KNOBS_RATIO")


INPUTS = {
    "knobs.enabled": ["yes", "OFF", " 1 ", "0", "true", "On", "maybe", "2", ""],
    "knobs.workers": ["8", " 7", "5.0", "0", "65", "+5", "abc", "1e1", "0x10"],
    "knobs.ratio": ["0.25", "1", "2", "nan", "half"],
}
ENV_NAMES = {"knobs.enabled": "KNOBS_ENABLED", "knobs.workers": "KNOBS_WORKERS", "knobs.ratio": "KNOBS_RATIO"}

# An application process: for each input, its environment variable set and a fresh connect; the value it
# reads, or the rule it was refused with (the part after "for setting <path>: ").
ENV_PROBE = """
import asyncio, json, os, sys
sys.path.insert(0, sys.argv[1])
import accord
from tests.cli.test_polish_entry_points import Knobs
cases = json.loads(sys.argv[3])
async def main():
    out = []
    for path, variable, text in cases:
        os.environ[variable] = text
        try:
            async with await accord.connect(sys.argv[2], "", groups=[Knobs], watch=False) as cfg:
                out.append({"value": cfg.get(path)})
        except accord.AccordError as exc:
            out.append({"error": exc.detail})
        del os.environ[variable]
    print(json.dumps(out))
asyncio.run(main())
"""


def _rule(detail: str, path: str) -> str:
    """The message after the entry point's own prefix: "invalid value for <path>: ..." is the shared part."""
    start = detail.index(f"invalid value for {path}: ")
    return detail[start:]


@pytest.fixture
async def knobs_server(sqlite_url: str, start_server: ServerFactory) -> AccordServer:
    async with await accord.connect(sqlite_url, "", groups=[Knobs], watch=False):
        pass
    return start_server(sqlite_url)


def _env_answers(db_url: str) -> list[dict[str, object]]:
    cases = [(path, ENV_NAMES[path], text) for path, texts in INPUTS.items() for text in texts]
    done = subprocess.run(
        [sys.executable, "-c", ENV_PROBE, str(ROOT), db_url, json.dumps(cases)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers: list[dict[str, object]] = json.loads(done.stdout)
    return answers


def _cli_answer(db_url: str, path: str, text: str) -> dict[str, object]:
    done = run_cli("config", "set", path, text, "--json", db=db_url, code=None)
    if done.returncode == 0:
        return {"value": json.loads(done.stdout)["value"]}
    assert done.returncode == 2, done.stderr
    return {"error": done.stderr.strip().splitlines()[0].removeprefix("error: ")}


def _put(server: AccordServer, path: str, body: dict[str, object]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.put(f"{server.addr}/api/config/{path}", json=body, headers=headers, timeout=10)


def _http_answer(server: AccordServer, path: str, text: str) -> dict[str, object]:
    answer = _put(server, path, {"input": text})
    if answer.status_code == 200:
        return {"value": answer.json()["value"]}
    assert answer.status_code == 422, answer.text
    return {"error": answer.json()["detail"]}


async def test_typed_text_reads_the_same_on_every_entry_point(knobs_server: AccordServer) -> None:
    """Bool spellings, numbers and rule messages: env var, Python API, CLI and HTTP agree word for word."""
    env = iter(_env_answers(knobs_server.db_url))
    async with await accord.connect(knobs_server.db_url, "", groups=[Knobs], watch=False, use_env=False) as cfg:
        for path, texts in INPUTS.items():
            for text in texts:
                try:
                    api: dict[str, object] = {"value": (await cfg.set_input(path, text)).value}
                except accord.ValidationFailedError as exc:
                    api = {"error": exc.detail}
                answers = {
                    "env": next(env),
                    "python": api,
                    "cli": _cli_answer(knobs_server.db_url, path, text),
                    "http": _http_answer(knobs_server, path, text),
                }
                shared = {
                    where: ({"error": _rule(str(a["error"]), path)} if "error" in a else a)
                    for where, a in answers.items()
                }
                assert len({json.dumps(a, sort_keys=True) for a in shared.values()}) == 1, (path, text, answers)
                if "error" in answers["env"]:
                    assert ENV_NAMES[path] in str(answers["env"]["error"])  # the env message names its variable
    # the spellings a person types for a flag are the ACCORD_* flag spellings
    assert _cli_answer(knobs_server.db_url, "knobs.enabled", "YES") == {"value": True}


async def test_a_python_value_breaking_a_rule_gets_the_message_the_cli_gives(knobs_server: AccordServer) -> None:
    async with await accord.connect(knobs_server.db_url, "", groups=[Knobs], watch=False, use_env=False) as cfg:
        for path, value in [("knobs.workers", 0), ("knobs.workers", 65), ("knobs.ratio", 2.0), ("knobs.enabled", 3)]:
            with pytest.raises(accord.ValidationFailedError) as info:
                await cfg.set(path, value)
            typed = json.dumps(value)
            assert _cli_answer(knobs_server.db_url, path, typed) == {"error": info.value.detail}
            assert _http_answer(knobs_server, path, typed) == {"error": info.value.detail}
            assert "Input should" not in info.value.detail  # not pydantic's own wording


async def test_a_mistyped_path_gets_did_you_mean_everywhere(knobs_server: AccordServer) -> None:
    hint = "did you mean knobs.workers?"
    cli = run_cli("config", "set", "knobs.wokers", "3", db=knobs_server.db_url, code=2)
    assert hint in cli.stderr and '"knobs.wokers"' in cli.stderr
    over = run_cli("config", "get", "knobs.wokers", addr=knobs_server.addr, token=knobs_server.token, code=2)
    assert hint in over.stderr
    answer = _put(knobs_server, "knobs.wokers", {"value": 3})
    assert answer.status_code == 404 and hint in answer.json()["detail"]
    async with await accord.connect(knobs_server.db_url, "", groups=[Knobs], watch=False, use_env=False) as cfg:
        with pytest.raises(accord.UnknownSettingError, match=hint):
            await cfg.set("knobs.wokers", 3)
    nothing_close = run_cli("config", "get", "zzz.qqq", db=knobs_server.db_url, code=2)
    assert "did you mean" not in nothing_close.stderr


@pytest.mark.parametrize("addr", ["localhost:99999", "http://127.0.0.1:abc", "not a url", "ftp://example.com"])
def test_a_bad_accord_addr_is_refused_naming_value_and_variable(addr: str) -> None:
    done = run_cli("config", "list", addr=addr, code=2)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ACCORD_ADDR="), done.stderr
    shown = addr.split("://")[-1]
    assert shown in lines[0] and "not a server address" in lines[0]


async def test_unset_reports_the_revision_it_committed(knobs_server: AccordServer) -> None:
    for where in ({"db": knobs_server.db_url}, {"addr": knobs_server.addr, "token": knobs_server.token}):
        run_cli("config", "set", "knobs.workers", "9", **where)
        unset = json.loads(run_cli("config", "unset", "knobs.workers", "--json", **where).stdout)
        history = json.loads(run_cli("config", "history", "knobs.workers", "--json", **where).stdout)
        assert history[0]["op"] == "delete"
        assert unset["mod_revision"] == history[0]["revision"] > 0
        text = run_cli("config", "set", "knobs.workers", "9", **where)
        assert "revision 0" not in text.stdout
        line = run_cli("config", "unset", "knobs.workers", **where).stdout
        assert f"revision {history[0]['revision'] + 2}" in line, line


def test_errors_name_dotted_paths_and_quote_values_as_json(knobs_server: AccordServer) -> None:
    db = knobs_server.db_url
    run_cli("config", "set", "knobs.workers", "9", db=db)
    for where in ({"db": db}, {"addr": knobs_server.addr, "token": knobs_server.token}):
        conflict = run_cli("config", "set", "knobs.workers", "10", "--expect-version", "7", **where, code=3)
        missing = run_cli("config", "rollback", "knobs.workers", "--to-version", "99", **where, code=4)
        bad = run_cli("config", "set", "knobs.workers", "abc", **where, code=2)
        for done in (conflict, missing, bad):
            assert "knobs.workers" in done.stderr and "config/knobs" not in done.stderr, done.stderr
        assert '"abc"' in bad.stderr and "'abc'" not in bad.stderr
    note = run_cli("config", "list", "--prefix", "nope.", db=db)
    assert '"nope."' in note.stderr


def test_times_print_in_one_style_both_ways(knobs_server: AccordServer) -> None:
    run_cli("config", "set", "knobs.workers", "12", db=knobs_server.db_url)
    direct, http = both(
        knobs_server.db_url, knobs_server.addr, knobs_server.token, "config", "history", "knobs.workers", "--json"
    )
    assert direct.stdout == http.stdout
    at = json.loads(direct.stdout)[0]["at"]
    assert at.endswith("Z") and "+00:00" not in at, at
    tokens = json.loads(run_cli("token", "list", "--json", addr=knobs_server.addr, token=knobs_server.token).stdout)
    assert all(row["created_at"].endswith("Z") for row in tokens), tokens
    audit = json.loads(run_cli("audit", "--json", db=knobs_server.db_url).stdout)
    assert audit and all(str(row["at"]).endswith("Z") for row in audit)
    table = run_cli("config", "history", "knobs.workers", db=knobs_server.db_url).stdout
    assert at[:19] + "Z" in table  # the table's time is the JSON one to the second, with its zone
    listing = json.loads(run_cli("config", "list", "--json", db=knobs_server.db_url).stdout)
    declared = {row["declared_at"] for row in listing}
    assert all(str(moment).endswith("Z") for moment in declared), declared


@pytest.mark.parametrize(
    ("args", "placeholders"),
    [
        (("config", "set"), ("PATH", "VALUE", "--expect-version", "VERSION", "--db-url", "URL")),
        (("config", "history"), ("PATH", "LIMIT")),
        (("token", "create"), ("NAME", "TTL")),
    ],
)
def test_help_shows_placeholders_not_types(args: tuple[str, ...], placeholders: tuple[str, ...]) -> None:
    done = run_cli(*args, "--help", extra={"COLUMNS": "200"})
    for placeholder in placeholders:
        assert placeholder in done.stdout, (placeholder, done.stdout)
    assert "<str>" not in done.stdout and "<int" not in done.stdout and "{path}" not in done.stdout


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("config", "set"), "Missing argument 'PATH'"),
        (("config", "set", "knobs.workers", "3", "--bogus"), "No such option: --bogus"),
        (("config", "history", "knobs.workers", "--limit", "0"), "--limit"),
        (("config", "frobnicate"), "No such command 'frobnicate'"),
    ],
)
def test_a_usage_error_is_one_documented_line_on_stderr(args: tuple[str, ...], what: str) -> None:
    done = run_cli(*args, code=2)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    command = " ".join(("accord", *args[:2])) if args[1] != "frobnicate" else "accord config"
    assert lines[0].startswith("error: ") and what in lines[0] and lines[0].endswith(f"(see: {command} --help)")
    documented = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "(see: accord config set --help)" in documented  # the form docs/cli.md shows
