"""`accord` with the vault commands registered, for tests: ``python vault_cli_shim.py vault mask FILE``.

`accord.cli.app` registers ``vault`` and ``proxy`` itself once that change lands; until then this adds
them to the real app the same way (``app.add_typer(vault_app, name="vault")``, ``app.command("proxy")``).
With ACCORD_TEST_DEBUG_LOGS=1 every logger runs at DEBUG, for tests that search the logs for secrets.
"""

from __future__ import annotations

import logging
import os
import sys

from accord.cli.app import app
from accord.cli.vault_cmds import proxy, vault_app


def main() -> None:
    if os.environ.get("ACCORD_TEST_DEBUG_LOGS") == "1":
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("sqlalchemy").setLevel(logging.DEBUG)
    groups = {group.name for group in app.registered_groups}
    commands = {command.name or getattr(command.callback, "__name__", "") for command in app.registered_commands}
    if "vault" not in groups:
        app.add_typer(vault_app, name="vault")
    if "proxy" not in commands:
        app.command("proxy")(proxy)
    sys.argv[0] = "accord"
    app()


if __name__ == "__main__":
    main()
