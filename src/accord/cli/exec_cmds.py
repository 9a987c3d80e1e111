"""``accord exec`` and ``accord render``: settings for programs that are not written in Python.

``exec`` runs a command with the settings under a prefix as environment variables and restarts it
when one changes (what envconsul does); ``render`` writes a file from a template and rewrites it on
change (what consul-template does). Both read a LiveConfig, so they run over the remote mode
(ACCORD_ADDR + ACCORD_TOKEN, docs/remote.md) as well as on the database. A file is replaced by
rename, so a reader never sees it half-written; a secret is never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from accord.cli.errors import run
from accord.config.connect import connect
from accord.config.live import LiveConfig
from accord.core.environ import process_environ
from accord.core.errors import ConfigFileError, UnknownSettingError
from accord.core.files import write_atomically

STOP_WAIT_S = 10.0
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")

Prefix = Annotated[str, typer.Option("--prefix", help="Dotted settings prefix, e.g. app. (empty: every setting).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would be used (secrets masked) and stop.")]


def text_of(value: object) -> str:
    """A value as an environment variable or template holds it: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def environment(live: LiveConfig, prefix: str) -> dict[str, str]:
    """The settings under ``prefix``: each under its declared env name, else its path in capitals (a.b → A_B)."""
    return {name: value for name, value, _secret in variables(live, prefix)}


def variables(live: LiveConfig, prefix: str) -> list[tuple[str, str, bool]]:
    """(variable name, value, secret) of every setting under ``prefix``; none visible is an error naming it."""
    found = live.all(prefix)
    if not found:
        raise UnknownSettingError(f"no setting under the prefix {prefix!r} is visible here (check the token's rules)")
    rows = []
    for meta in found:
        spec = live.registry.spec(meta.path)
        name = spec.env or re.sub(r"[^A-Za-z0-9_]", "_", meta.path).upper()
        rows.append((name, text_of(meta.value), meta.secret))
    return rows


def render_text(live: LiveConfig, template: str) -> str:
    """``{{ dotted.path }}`` replaced by each setting's value; an unknown one is an error naming it."""
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1) not in live.registry.by_path})
    if missing:
        raise UnknownSettingError(f"the template names settings that are not visible here: {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: text_of(live.get(m.group(1))), template)


@run
async def exec_command(
    command: Annotated[list[str], typer.Argument(metavar="-- CMD", help="The command to run and restart.")],
    prefix: Prefix = "",
    dry_run: DryRun = False,
) -> None:
    """Run CMD with the settings under --prefix as environment variables; restart it when one changes."""
    async with await connect(use_env=False, announce=False) as live:
        if dry_run:
            for name, value, secret in variables(live, prefix):
                typer.echo(f"{name}={'****' if secret else value}")
            return
        env = environment(live, prefix)
        changed = asyncio.Event()
        live.on_change(prefix, lambda _change: changed.set())
        while True:
            code = await _run_until_change(command, env, changed)
            if code is not None:
                raise typer.Exit(code)
            changed.clear()
            env = environment(live, prefix)


async def _run_until_change(command: list[str], env: dict[str, str], changed: asyncio.Event) -> int | None:
    """The child's exit code if it ended by itself; None after stopping it because a setting changed."""
    child = await asyncio.create_subprocess_exec(*command, env=process_environ() | env)
    ended = asyncio.ensure_future(child.wait())
    change = asyncio.ensure_future(changed.wait())
    try:
        await asyncio.wait({ended, change}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        change.cancel()
    if ended.done():
        return ended.result()
    child.terminate()
    try:
        async with asyncio.timeout(STOP_WAIT_S):
            await ended
    except TimeoutError:
        child.kill()
        await ended
    return None


@run
async def render_command(
    template: Annotated[Path, typer.Argument(help="Template file; {{ dotted.path }} is replaced by the value.")],
    out: Annotated[Path, typer.Argument(help="The file to write (replaced atomically).")],
    once: Annotated[bool, typer.Option("--once", help="Write it once and stop instead of following changes.")] = False,
    dry_run: DryRun = False,
) -> None:
    """Write OUT from TEMPLATE and rewrite it whenever a setting it names changes."""
    try:
        text = template.read_text()
    except OSError as exc:
        raise ConfigFileError(f"cannot read the template {template}: {exc.strerror}") from None
    async with await connect(use_env=False, announce=False) as live:
        rendered = render_text(live, text)
        if dry_run:
            named = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)})
            typer.echo(f"would write {out} ({len(rendered.encode())} bytes) from: {', '.join(named) or 'no settings'}")
            return
        write_atomically(out, rendered)
        if once:
            return
        changed = asyncio.Event()
        live.on_change("", lambda _change: changed.set())
        while True:
            await changed.wait()
            changed.clear()
            new = render_text(live, text)
            if new != rendered:
                write_atomically(out, new)
                rendered = new
                with contextlib.suppress(BrokenPipeError):
                    sys.stderr.write(f"accord render: rewrote {out}\n")
