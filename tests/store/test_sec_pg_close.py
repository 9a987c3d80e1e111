"""A PostgreSQL-backed process closes quietly and never negotiates TLS it was not asked for (issue 8, item 17).

A short script (connect, set, aclose) runs as a real subprocess; its connections go through a TCP relay
that records the first bytes of every connection, so a TLS request (the 8-byte SSLRequest) is seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import accord
    from tests.config.procs_worker import Knobs

    async def main() -> None:
        cfg = await accord.connect(sys.argv[1], sys.argv[2], groups=[Knobs])
        await cfg.set("knobs.level", 3)
        await cfg.aclose()

    asyncio.run(main())
    """
)
# The short script users write most: blocking API, on PostgreSQL + Redis, ended by the interpreter's exit.
SYNC_SCRIPT_NO_CLOSE = textwrap.dedent(
    """
    import sys
    import accord
    from tests.config.procs_worker import Knobs

    cfg = accord.connect_sync(sys.argv[1], sys.argv[2], groups=[Knobs])
    cfg.set("knobs.level", 4)
    assert cfg.knobs.level == 4
    """
)


@dataclass
class Relay:
    """Forwards 127.0.0.1:<port> to PostgreSQL, noting how each connection began."""

    target_port: int
    openings: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        first = await reader.read(8)
        self.openings.append(first)
        up_writer.write(first)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            writer.close()


@pytest.fixture
async def relay(pg_url: str) -> AsyncIterator[tuple[Relay, str]]:
    url = sa.make_url(pg_url)
    assert url.port is not None
    relay = Relay(url.port)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    relay.port = server.sockets[0].getsockname()[1]
    try:
        yield relay, url.set(port=relay.port).render_as_string(hide_password=False)
    finally:
        server.close()


async def run_script(db_url: str, redis_url: str = "", script: str = SCRIPT) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, db_url, redis_url, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return subprocess.CompletedProcess([], proc.returncode, out.decode(), err.decode())


async def test_connect_set_aclose_prints_nothing_and_asks_for_no_tls(relay: tuple[Relay, str]) -> None:
    recorder, db_url = relay
    done = await run_script(db_url)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "closing a PostgreSQL-backed process must print nothing"
    assert recorder.openings, "the script's connections went through the relay"
    assert SSL_REQUEST not in recorder.openings, "no connection asked for TLS without sslmode/ssl in the URL"


@pytest.mark.parametrize("query", ["?ssl=prefer", "?sslmode=prefer"])
async def test_a_url_that_asks_for_tls_gets_it_on_every_connection_and_still_closes_quietly(
    relay: tuple[Relay, str], query: str
) -> None:
    """Both spellings users write: SQLAlchemy's ``ssl`` and libpq's ``sslmode``.

    The LISTEN/NOTIFY connections are opened by asyncpg from a DSN, not by SQLAlchemy: ``?ssl=`` once
    reached the server there as a run-time setting ("parameter ssl cannot be changed now", every
    announcement failed), and ``?sslmode=`` crashed the engine with a TypeError.
    """
    recorder, db_url = relay
    done = await run_script(db_url + query)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "closing a PostgreSQL-backed process must print nothing"
    # The pool's connection, the bus's listener and its publisher each ask first (``prefer`` may then
    # retry in plain text on a new connection when the server declines).
    assert recorder.openings.count(SSL_REQUEST) >= 3, recorder.openings


async def test_a_blocking_script_on_postgres_and_redis_that_never_closes_exits_quietly(
    relay: tuple[Relay, str], redis_url: str
) -> None:
    recorder, db_url = relay
    done = await run_script(db_url, redis_url, SYNC_SCRIPT_NO_CLOSE)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "a process ended without close() must print nothing either"
    assert recorder.openings and SSL_REQUEST not in recorder.openings
