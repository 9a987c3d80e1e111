"""Every module imports on its own in a fresh interpreter (no cycle, no import-order dependency), and the
public API stays light: ``import accord`` loads neither the database stack nor Redis."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import accord

SRC = Path(accord.__file__).resolve().parent
# Alembic's environment script runs the migrations when imported; only alembic may load it.
NOT_IMPORTABLE_ALONE = {"accord.store.migrations.env"}
HEAVY = ("sqlalchemy", "alembic", "redis")


def all_modules() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in NOT_IMPORTABLE_ALONE:
            names.append(name)
    return names


def loaded_after(code: str) -> list[str]:
    """The top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


# One interpreter loads the third-party stack accord builds on (never accord itself), then forks a
# child per module: each child starts with no accord module loaded, which is what "imports alone"
# is about, without paying a fresh interpreter's ~0.5 s of SQLAlchemy, pydantic and FastAPI each time.
_FORKING_PROBE = """
import importlib, json, os, sys, traceback
for warm in sys.argv[1].split(","):
    try:
        importlib.import_module(warm)
    except ImportError:
        pass
assert not [m for m in sys.modules if m == "accord" or m.startswith("accord.")], "the parent loaded accord"
results = {}
for name in sys.argv[2:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            code, last = 0, ""
        except BaseException:
            code, last = 1, traceback.format_exc().strip().splitlines()[-1]
        os.write(write, last.encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        last = pipe.read()
    _, status = os.waitpid(pid, 0)
    results[name] = [os.waitstatus_to_exitcode(status), last]
print(json.dumps(results))
"""
_THIRD_PARTY = (
    "sqlalchemy", "sqlalchemy.ext.asyncio", "alembic", "aiosqlite", "asyncpg", "redis.asyncio", "pydantic",
    "fastapi", "starlette", "uvicorn", "typer", "rich", "cryptography", "prometheus_client", "tenacity", "httpx",
    "jsonschema",
)  # fmt: skip


def imported_alone(names: list[str]) -> dict[str, tuple[int, str]]:
    """Each module's exit code and last error line, imported in a process where no accord module was loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _FORKING_PROBE, ",".join(_THIRD_PARTY), *names],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, list[object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (int(str(code)), str(last)) for name, (code, last) in results.items()}


def test_the_module_list_is_complete() -> None:
    names = all_modules()
    assert {"accord", "accord.core.errors", "accord.cli.backend.http", "accord.server.run"} <= set(names)
    assert len(names) > 80


def test_every_module_imports_alone_with_no_other_accord_module_loaded() -> None:
    results = imported_alone(all_modules())
    assert set(results) == set(all_modules())
    failures = [f"{name}: {last_line}" for name, (code, last_line) in results.items() if code != 0]
    assert failures == []


def test_the_import_probe_reports_a_module_that_fails() -> None:
    """The probe can fail: a module that does not exist, and one that raises while importing, are reported."""
    results = imported_alone(["accord.no_such_module", "accord.store.migrations.env"])
    assert results["accord.no_such_module"][0] == 1
    assert "ModuleNotFoundError" in results["accord.no_such_module"][1]
    assert results["accord.store.migrations.env"][0] == 1  # alembic's script runs only under alembic


def imported_by(name: str, path: Path, known: set[str]) -> set[str]:
    """The accord modules ``path`` imports, at its top or inside a function (type-checking imports aside).

    ``from package import module`` is an edge to the module, not to the package: a package that
    imports its submodules lazily (``accord.cli.backend``) is not in a cycle with them.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # ast.walk has not entered it yet
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            found |= submodules if len(submodules) == len(node.names) else {*submodules, node.module}
    return (found & known) - {name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_import_cycle_even_through_deferred_imports() -> None:
    paths = {name: _path_of(name) for name in [*all_modules(), *NOT_IMPORTABLE_ALONE]}
    graph = {name: imported_by(name, path, set(paths)) for name, path in paths.items()}
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail


def _path_of(name: str) -> Path:
    base = SRC.parent.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def test_import_accord_loads_no_database_driver_or_redis() -> None:
    loaded = loaded_after("import accord")
    assert [name for name in HEAVY if name in loaded] == []
    assert "accord" in loaded  # the probe itself can see what it looks for


def test_the_lazy_names_resolve_and_then_load_what_they_need() -> None:
    loaded = loaded_after("import accord\nassert accord.connect and accord.ConflictError and accord.__version__")
    assert "sqlalchemy" in loaded  # accord.connect did import its modules when asked


def test_every_public_name_resolves() -> None:
    for name in accord.__all__:
        assert getattr(accord, name) is not None, name
    assert set(accord.__all__) <= set(dir(accord))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        accord.nope  # noqa: B018 - the lookup is the test
