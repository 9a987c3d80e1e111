"""The vault is a capability: none of its modules imports a web framework (the proxy, a shell, does)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import accord.vault

WEB = ("starlette", "httpx", "fastapi", "uvicorn")


def test_no_vault_module_imports_a_web_framework() -> None:
    names = [info.name for info in pkgutil.walk_packages(accord.vault.__path__, "accord.vault.")]
    assert {"accord.vault._sql.mappings", "accord.vault._redis.mappings", "accord.vault.shared"} <= set(names)
    code = (
        f"import importlib, sys\nfor name in {names!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {WEB!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout
    with_proxy = subprocess.run(
        [sys.executable, "-c", code.replace("print(", "import accord.proxy\nprint(")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "starlette" in with_proxy.stdout, "the check sees a web framework when one is imported"
