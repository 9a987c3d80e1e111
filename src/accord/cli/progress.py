"""Progress bars for long imports, exports and migrations: on stderr, so stdout stays clean for scripts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Protocol

import typer
from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

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


class _CountColumn(ProgressColumn):
    """``12/500 keys``, or ``1.2 MB`` for a download of unknown size."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "keys")
        done = int(task.completed)
        if unit == "bytes":
            return Text(filesize.decimal(done))
        total = "" if task.total is None else f"/{int(task.total)}"
        return Text(f"{done}{total} {unit}")


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
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            _CountColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
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
