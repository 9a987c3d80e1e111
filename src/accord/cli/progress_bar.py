"""The drawn progress bar (Rich), imported only when a job is big enough to show one."""

from __future__ import annotations

from rich import filesize
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text


class _CountColumn(ProgressColumn):
    """``12/500 keys``, or ``1.2 MB`` for a download of unknown size."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "keys")
        done = int(task.completed)
        if unit == "bytes":
            return Text(filesize.decimal(done))
        total = "" if task.total is None else f"/{int(task.total)}"
        return Text(f"{done}{total} {unit}")


def progress_bar() -> Progress:
    """A bar on stderr, so stdout stays clean for scripts."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        _CountColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
