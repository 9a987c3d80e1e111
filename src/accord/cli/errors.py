"""Exit codes and the one-line error report, the same whether a command ran on the database or over HTTP."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

import typer

from accord.core.errors import AccordError, exit_code_for
from accord.core.errors import InputError as InputError
from accord.core.errors import RemoteError as RemoteError
from accord.core.errors import ServerUnreachableError as ServerUnreachableError

P = ParamSpec("P")

EXIT_HELP = (
    "Exit codes: 0 ok; 1 other error; 2 invalid input (value, path, rule, file); 3 version conflict; "
    "4 not found; 5 database or server unreachable; 6 token missing, unknown or expired (HTTP 401); "
    "7 token not allowed to do this (HTTP 403); 8 --wait-applied ran out with live instances behind (HTTP 504). "
    "With ACCORD_ADDR set (e.g. http://127.0.0.1:8500) commands go to that server with ACCORD_TOKEN as bearer "
    "token; otherwise straight to the database (ACCORD_DB_URL, default ./accord.db)."
)


def exit_code(exc: AccordError) -> int:
    """Each error class carries its exit code (core/errors.py), the same table the server's statuses come from."""
    return exit_code_for(exc)


def fail(detail: str) -> None:
    """One line on stderr, never wrapped, so scripts can grep it."""
    from rich.markup import escape

    from accord.cli import output

    output.err_console.print(f"[red]error:[/red] {escape(detail)}", highlight=False, soft_wrap=True)


def run(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async command; an accord error becomes one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        import asyncio  # here, not at the top: `accord --version` never needs it

        try:
            asyncio.run(fn(*args, **kwargs))
        except AccordError as exc:
            fail(exc.detail)
            raise typer.Exit(exit_code(exc)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:  # the reader went away (`accord config export | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None

    return wrapper
