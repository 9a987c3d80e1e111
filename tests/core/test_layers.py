"""The dependency rule of DESIGN §1, checked on the source: core <- store <- bus <- replica <- capabilities <- shells.

Imports are read statically (also those inside functions), so a deferred import cannot hide a wrong
direction. A capability may use another only through its public modules (PUBLIC below).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import accord

SRC = Path(accord.__file__).parent
LAYERS = {
    "core": 0,
    "store": 1,
    "bus": 2,
    "replica": 3,
    "remote": 3,  # a remote client's store and stream: beside the replica they feed, under config
    "config": 4,
    "auth": 4,
    "vault": 4,
    "registry": 4,
    "events": 4,
    "cache": 4,
    "keys": 5,  # rotation reseals what every capability sealed
    "server": 6,
    "proxy": 6,
    "cli": 7,
}
CAPABILITIES = {"config", "auth", "vault", "registry", "events", "cache"}
PUBLIC = {
    "accord.config.settings",
    "accord.config.connect",
    "accord.config.live",
    "accord.config.values",
    "accord.vault",  # events masks fields with the vault's detectors
    "accord.registry.fleet",  # every watching LiveConfig announces itself in the fleet view
}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [name for name in names if name.startswith("accord.")]


def _violation(package: str, imported: str) -> str | None:
    target = imported.split(".")[1]
    if target == package or target not in LAYERS:
        return None
    if package in CAPABILITIES and target in CAPABILITIES:
        return None if imported in PUBLIC else "a capability uses another only through its public modules"
    if LAYERS[target] >= LAYERS[package]:
        return f"{package} (layer {LAYERS[package]}) may not import {target} (layer {LAYERS[target]})"
    return None


def test_every_package_has_a_layer() -> None:
    packages = {path.name for path in SRC.iterdir() if (path / "__init__.py").exists()}
    assert packages == set(LAYERS)


def test_dependencies_point_one_way() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).parts
        if len(parts) == 1:
            continue
        for imported in _imports(path):
            why = _violation(parts[0], imported)
            if why:
                found.append(f"{path.relative_to(SRC)} imports {imported}: {why}")
    assert found == []


def test_the_rule_catches_a_wrong_direction() -> None:
    assert _violation("store", "accord.bus.types")
    assert _violation("core", "accord.store.kv")
    assert _violation("vault", "accord.config.admin")
    assert _violation("config", "accord.server.app")
    assert _violation("bus", "accord.store.kv") is None
    assert _violation("vault", "accord.config.live") is None


def _sources() -> list[tuple[str, str]]:
    return [(str(path.relative_to(SRC)), path.read_text()) for path in sorted(SRC.rglob("*.py"))]


def test_only_core_environ_reads_the_environment() -> None:
    readers = [name for name, text in _sources() if "os.environ" in _code(text) or "getenv(" in _code(text)]
    assert readers == ["core/environ.py"]


def test_only_the_dialect_module_branches_on_the_sql_dialect() -> None:
    comparisons = re.compile(r"dialect\.name\s*(==|!=|in\b)|is_sqlite\(|is_postgres\(")
    branching = {name.split("/")[0] for name, text in _sources() if comparisons.search(_code(text))}
    assert branching <= {"store", "vault"}  # store/dialect.py, and callers that ask it (is_sqlite / is_postgres)
    direct = [name for name, text in _sources() if re.search(r"dialect\.name\s*(==|!=|in\b)", _code(text))]
    assert direct == ["store/dialect.py"]


def test_driver_error_codes_are_read_only_at_the_store_boundary() -> None:
    markers = ("sqlstate", "deadlock detected", "40P01")
    readers = [name for name, text in _sources() if any(marker in _code(text) for marker in markers)]
    assert readers == ["store/engine.py"]


def _code(text: str) -> str:
    """The source without docstrings and comments, so prose that names a variable does not count."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                body[0] = ast.Pass()
    return ast.unparse(tree)
