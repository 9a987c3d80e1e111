"""Exit codes and the one-line error report, the same whether a command ran on the database or over HTTP."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

import typer
from rich.markup import escape

from accord.auth.policy import PolicyError
from accord.auth.tokens import TokenError
from accord.cli import output
from accord.core import errors as e

P = ParamSpec("P")

EXIT_HELP = (
    "Exit codes: 0 ok; 1 other error; 2 invalid input (value, path, rule, file); 3 version conflict; "
    "4 not found; 5 database or server unreachable; 6 token missing, unknown or expired (HTTP 401); "
    "7 token not allowed to do this (HTTP 403). "
    "With ACCORD_ADDR set (e.g. http://127.0.0.1:8500) commands go to that server with ACCORD_TOKEN as bearer "
    "token; otherwise straight to the database (ACCORD_DB_URL, default ./accord.db)."
)


class InputError(e.AccordError):
    """Bad input on the command line or in a file the command was given."""


class ServerUnreachableError(e.StoreUnavailableError):
    """The server named by ACCORD_ADDR did not answer."""


class RemoteError(e.AccordError):
    """An error answer from the server: ``kind`` is the library error it names, if the CLI knows it."""

    def __init__(self, detail: str, *, kind: type[e.AccordError] | None, status: int) -> None:
        super().__init__(detail)
        self.kind = kind
        self.status = status


EXIT_CODES: list[tuple[type[e.AccordError], int]] = [
    (e.AuthenticationError, 6),
    (e.PermissionDeniedError, 7),
    (e.ValidationFailedError, 2),
    (e.InvalidKeyError, 2),
    (e.ValueTooLargeError, 2),
    (e.RequestTooLargeError, 2),
    (e.UnknownSettingError, 2),
    (e.ConfigFileError, 2),
    (e.CodecError, 2),
    (PolicyError, 2),
    (TokenError, 2),
    (InputError, 2),
    (e.ConflictError, 3),
    (e.NotFoundError, 4),
    (e.StoreUnavailableError, 5),
]
# When the server names an error the CLI does not know (a newer server), its HTTP status decides.
STATUS_CODES = {400: 2, 401: 6, 403: 7, 404: 4, 409: 3, 410: 4, 413: 2, 422: 2, 503: 5}


def exit_code(exc: e.AccordError) -> int:
    if isinstance(exc, RemoteError):
        if exc.kind is not None:
            return code_for_class(exc.kind)
        return STATUS_CODES.get(exc.status, 1)
    return code_for_class(type(exc))


def code_for_class(cls: type[e.AccordError]) -> int:
    return next((code for known, code in EXIT_CODES if issubclass(cls, known)), 1)


def fail(detail: str) -> None:
    """One line on stderr, never wrapped, so scripts can grep it."""
    output.err_console.print(f"[red]error:[/red] {escape(detail)}", highlight=False, soft_wrap=True)


def run(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async command; an accord error becomes one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            asyncio.run(fn(*args, **kwargs))
        except e.AccordError as exc:
            fail(exc.detail)
            raise typer.Exit(exit_code(exc)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:  # the reader went away (`accord config export | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None

    return wrapper
