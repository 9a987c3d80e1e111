"""One error table: every class's HTTP status, code and exit code agree across server, CLI and HTTP CLI.

Each class is raised inside a real FastAPI app carrying the server's error handlers, fetched by the
CLI's HTTP backend, decoded, and given an exit code by the CLI's report: what comes out must be the
class that went in, with the status and exit code the class declares.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import accord
from accord.cli.backend.http import HttpBackend
from accord.cli.errors import exit_code
from accord.core import errors
from accord.core.errors import AccordError, RemoteError, by_code, error_classes, for_status
from accord.server.errors import install, status_for

CLASSES = [cls for cls in error_classes() if cls is not RemoteError]


class _FutureServerError(Exception):
    """An error a newer server might send: a code this CLI has never heard of."""

    def __init__(self, status: int) -> None:
        self.status = status


def _app() -> FastAPI:
    app = FastAPI()
    install(app)

    @app.get("/raise/{code}")
    async def _raise(code: str) -> None:
        cls = by_code(code)
        assert cls is not None
        raise cls.from_detail(f"boom from {code}")

    @app.get("/unknown/{status}")
    async def _unknown(status: int) -> None:
        raise _FutureServerError(status)

    @app.exception_handler(_FutureServerError)
    async def _future(_request: Request, exc: _FutureServerError) -> JSONResponse:
        return JSONResponse({"error": "ErrorOfTomorrow", "detail": "new"}, exc.status)

    return app


@pytest.fixture
async def backend() -> AsyncIterator[HttpBackend]:
    cli = HttpBackend("http://accord.test", None)
    await cli.aclose()
    cli._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://accord.test")
    try:
        yield cli
    finally:
        await cli.aclose()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
async def test_every_error_round_trips_server_to_cli(backend: HttpBackend, cls: type[AccordError]) -> None:
    raw = await backend._client.get(f"/raise/{cls.error_code}")
    assert raw.status_code == cls.http_status == status_for(cls.from_detail("x"))
    assert raw.json()["error"] == cls.error_code
    with pytest.raises(AccordError) as caught:
        await backend._call("GET", f"/raise/{cls.error_code}")
    assert type(caught.value) is cls
    assert caught.value.detail.startswith(f"boom from {cls.error_code}")
    assert exit_code(caught.value) == cls.exit_code


@pytest.mark.parametrize("status", sorted({cls.http_status for cls in CLASSES}))
async def test_an_unknown_code_exits_as_the_most_general_class_of_its_status(backend: HttpBackend, status: int) -> None:
    with pytest.raises(RemoteError) as caught:
        await backend._call("GET", f"/unknown/{status}")
    general = for_status(status)
    assert general is not None and general.http_status == status
    assert exit_code(caught.value) == general.exit_code


def test_the_tree_keeps_the_exit_codes_the_cli_documents() -> None:
    expected: dict[type[AccordError], int] = {
        errors.InputError: 2,
        errors.ValidationFailedError: 2,
        errors.ConflictError: 3,
        errors.NotFoundError: 4,
        errors.CompactedError: 4,
        errors.UnknownSettingError: 2,
        errors.StoreUnavailableError: 5,
        errors.ServerUnreachableError: 5,
        errors.AuthenticationError: 6,
        errors.PermissionDeniedError: 7,
        errors.MasterKeyError: 1,
        AccordError: 1,
    }
    assert {cls: cls.exit_code for cls in expected} == expected
    assert {status: for_status(status) for status in (400, 404, 503)} == {
        400: errors.InputError,
        404: errors.NotFoundError,
        503: errors.StoreUnavailableError,
    }


def test_codes_are_unique_and_every_class_lives_in_core_errors() -> None:
    for info in pkgutil.walk_packages(accord.__path__, "accord."):
        if not info.name.endswith("migrations.env"):  # runs migrations on import; alembic's to load
            importlib.import_module(info.name)
    found: set[type[AccordError]] = set()
    todo = [AccordError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    strays = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in found if cls.__module__ != errors.__name__)
    assert strays == []
    assert len({cls.error_code for cls in found}) == len(found)
    assert set(error_classes()) == found


def test_old_import_paths_still_give_the_same_classes() -> None:
    from accord.auth.policy import PolicyError
    from accord.auth.tokens import TokenError
    from accord.bus.types import BusUnavailableError
    from accord.cli.errors import InputError, RemoteError, ServerUnreachableError
    from accord.core.crypto import CryptoError, DecryptionError, MasterKeyError
    from accord.vault.types import InvalidInputError, SequenceError, VaultError

    assert (PolicyError, TokenError, BusUnavailableError) == (
        errors.PolicyError,
        errors.TokenError,
        errors.BusUnavailableError,
    )
    assert (InputError, RemoteError, ServerUnreachableError) == (
        errors.InputError,
        errors.RemoteError,
        errors.ServerUnreachableError,
    )
    assert (CryptoError, DecryptionError, MasterKeyError) == (
        errors.CryptoError,
        errors.DecryptionError,
        errors.MasterKeyError,
    )
    assert (InvalidInputError, SequenceError, VaultError) == (
        errors.InvalidInputError,
        errors.SequenceError,
        errors.VaultError,
    )


def test_the_tree_in_the_docstring_is_the_tree_in_the_code() -> None:
    lines = [line for line in (errors.__doc__ or "").splitlines() if re.search(r"\w+Error\s+\d{3}\s+exit \d", line)]
    documented = {}
    parents: list[tuple[int, str]] = []
    for line in lines:
        match = re.search(r"(\w+Error)\s+(\d{3})\s+exit (\d)", line)
        assert match is not None
        name, status, code = match.group(1), int(match.group(2)), int(match.group(3))
        depth = match.start(1)
        parents = [(d, p) for d, p in parents if d < depth]
        documented[name] = (status, code, parents[-1][1] if parents else None)
        parents.append((depth, name))
    in_code = {
        cls.__name__: (cls.http_status, cls.exit_code, None if cls is AccordError else cls.__mro__[1].__name__)
        for cls in CLASSES
    }
    assert documented == in_code
