"""An endless chunked answer's body written straight to its connection, beside uvicorn's ASGI ``send``.

One change reaches every remote client's stream at once. Through ASGI each write is a coroutine through
the middleware's and Starlette's send wrappers and uvicorn's own ``send``, and the stream's task has to
wake up to make it: about 50 µs of server CPU per stream per change, most of the fan-out's cost
(docs/BENCHMARKS.md, "Remote fan-out, second pass"). ``accord serve`` therefore runs uvicorn with
``DirectBodyProtocol``, which puts a ``DirectBody`` for each request into its scope's extensions; the
change stream writes an event's chunk with it synchronously, from the fan-out.

``write`` frames the chunk as uvicorn's ``send`` does and refuses (False) whenever uvicorn's ``send``
would not write at once: before the answer's head, after its end, when the client is gone, when the
answer is not chunked, and while uvicorn's flow control has paused writing (the client's buffers are
full). The caller then goes the ASGI way, whose ``send`` waits for the client: back-pressure is the
same as without the extension. Under another server (or uvicorn's h11) there is no extension and
everything goes through ``send``.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

EXTENSION = "accord.direct_body"


class DirectBody:
    """The body side of one uvicorn request/response cycle."""

    __slots__ = ("_cycle",)

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle

    def writable(self) -> bool:
        """Whether ``write`` would write now (uvicorn's ``send`` would write without waiting)."""
        cycle = self._cycle
        return (
            cycle.response_started
            and cycle.chunked_encoding is True
            and not cycle.response_complete
            and not cycle.disconnected
            and not cycle.flow.write_paused
        )

    def write(self, body: bytes) -> bool:
        """One chunk of the answer's body, written now; False (nothing written) when not ``writable``."""
        if not self.writable():
            return False
        self._cycle.transport.write(b"%x\r\n%b\r\n" % (len(body), body))
        return True


class DirectBodyProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, handing each request's ``DirectBody`` to the app in ``scope["extensions"]``."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        scope: Any = cycle.scope  # uvicorn's HTTPScope TypedDict does not name extensions it does not set
        scope.setdefault("extensions", {})[EXTENSION] = DirectBody(cycle)
        super()._start_asgi_task(cycle, app)


def direct_body(scope: Any) -> DirectBody | None:
    """The request's DirectBody when it runs under ``DirectBodyProtocol``, else None."""
    found = (scope.get("extensions") or {}).get(EXTENSION)
    return found if isinstance(found, DirectBody) else None


def protocol_class() -> type[HttpToolsProtocol] | str:
    """``DirectBodyProtocol`` where uvicorn has the hook it extends; else uvicorn's own choice (all via ``send``)."""
    if callable(getattr(HttpToolsProtocol, "_start_asgi_task", None)):
        return DirectBodyProtocol
    return "auto"
