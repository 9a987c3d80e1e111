"""Telling long requests that the process is stopping, before uvicorn waits for them to finish.

uvicorn stops on SIGTERM/SIGINT by closing idle connections and then waiting for every request in
flight; it tells a request nothing. A Consul blocking query waits up to ten minutes, so without this
a stopping server would hang for as long (Kubernetes then SIGKILLs it). Wrapping uvicorn's own
handlers for those signals lets the server answer every waiter at once and exit promptly; the
handler uvicorn installed still runs, so its shutdown (and a second Ctrl-C forcing it) is unchanged.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

_EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], object] | int | None


@contextmanager
def on_exit_signal(drain: Callable[[], None]) -> Iterator[None]:
    """Run ``drain`` on this loop when the process is told to stop, for as long as the block lasts.

    Only the main thread may install signal handlers: an app served by something else (a test's ASGI
    transport, an embedded CLI app) gets no hook, and needs none.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, Handler] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(drain)
        earlier = previous.get(signal.Signals(signum))
        if callable(earlier):
            earlier(signum, frame)
        elif earlier != signal.SIG_IGN:  # the default action, as if this hook had never been installed
            _die(signum)

    for sig in _EXIT_SIGNALS:
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _die(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
