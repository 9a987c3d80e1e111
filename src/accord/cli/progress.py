"""Progress bars for long imports, exports and migrations: on stderr, so stdout stays clean for scripts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

MANY_KEYS = 50  # below this a job is over before a bar would help

ProgressOpt = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Show a progress bar on stderr. Default: when stderr is a terminal and the job has many keys.",
        show_default=False,
    ),
]


class Meter(Protocol):
    """What a long job reports: its size once known (None: unknown), then how far it got."""

    def start(self, total: int | None, unit: str = "keys") -> None: ...

    def advance(self, amount: int = 1) -> None: ...


def wanted(choice: bool | None, size: int | None) -> bool:
    """An explicit --progress/--no-progress wins; otherwise a terminal on stderr and a big (or unknown) job."""
    if choice is not None:
        return choice
    return sys.stderr.isatty() and (size is None or size >= MANY_KEYS)


class _LazyMeter:
    """Decides whether to draw once the job knows its size, so small jobs never flash a bar."""

    def __init__(self, label: str, choice: bool | None) -> None:
        self._label = label
        self._choice = choice
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total: int | None, unit: str = "keys") -> None:
        if self._progress is not None or not wanted(self._choice, total):
            return
        from accord.cli.progress_bar import progress_bar

        self._progress = progress_bar()
        self._progress.start()
        self._task = self._progress.add_task(self._label, total=total, unit=unit)

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def stop(self) -> None:
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[self._task]
        if task.total is None:
            self._progress.update(self._task, total=task.completed)
        self._progress.stop()


@contextmanager
def meter(label: str, choice: bool | None) -> Iterator[Meter]:
    bar = _LazyMeter(label, choice)
    try:
        yield bar
    finally:
        bar.stop()
