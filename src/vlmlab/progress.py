"""Progress for long loops: a rich bar in a terminal, periodic plain lines everywhere else.

In CI, `nohup` or a log file a bar is invisible (and a 254 s toy-model build used to run in
silence), so when stderr is not a terminal `progress_bar()` returns a `PlainProgress` with the
same small API (`add_task`, `advance`, `update`, `disable`, context manager) that writes one line
per task every `PLAIN_INTERVAL_S` seconds and when the task completes::

    fine-tune: 120/400 (30%) 2.1 it/s, elapsed 57s, eta 2m13s

`make_console()` gives CLI output that never wraps a path mid-word when not a terminal.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, TextIO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

PLAIN_INTERVAL_S = 10.0
# Width used when output is not a terminal: tables size to their content instead of folding
# paths at 80 columns (rich's default for a pipe).
PLAIN_WIDTH = 400

_console = Console(stderr=True)


def make_console(stderr: bool = False) -> Console:
    """A rich Console for CLI output; off a terminal it is wide, so paths are never wrapped."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=PLAIN_WIDTH, soft_wrap=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class _PlainTask:
    description: str
    total: float | None
    completed: float
    start: float
    start_completed: float
    last_line: float = field(default=0.0)


class PlainProgress:
    """Plain-text progress lines for non-terminal output; see the module docstring."""

    def __init__(self, stream: TextIO | None = None, interval: float = PLAIN_INTERVAL_S) -> None:
        self.stream = stream
        self.interval = interval
        self.disable = False
        self._tasks: dict[int, _PlainTask] = {}

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **_: Any) -> int:
        task_id = len(self._tasks)
        now = time.monotonic()
        self._tasks[task_id] = _PlainTask(description, total, completed, now, completed, last_line=now)
        return task_id

    def update(self, task_id: int, *, description: str | None = None, total: float | None = None,
               completed: float | None = None, advance: float | None = None, **_: Any) -> None:
        task = self._tasks[task_id]
        if description is not None:
            task.description = description
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance:
            self.advance(task_id, advance)

    def advance(self, task_id: int, advance: float = 1) -> None:
        task = self._tasks[task_id]
        task.completed += advance
        now = time.monotonic()
        done = task.total is not None and task.completed >= task.total
        if (done and now - task.start >= 1.0) or now - task.last_line >= self.interval:  # no line for instant tasks
            task.last_line = now
            self._emit(task, now)

    def line(self, task_id: int) -> str:
        """The progress line of one task, as it would be written now."""
        return self._format(self._tasks[task_id], time.monotonic())

    def _format(self, task: _PlainTask, now: float) -> str:
        elapsed = max(now - task.start, 1e-9)
        rate = (task.completed - task.start_completed) / elapsed
        count = f"{task.completed:g}"
        parts = [f"{task.description}: {count}"]
        if task.total:
            parts[0] += f"/{task.total:g} ({100 * task.completed / task.total:.0f}%)"
        text = f"{parts[0]} {rate:.2f} it/s, elapsed {_duration(elapsed)}"
        if task.total and rate > 0 and task.completed < task.total:
            text += f", eta {_duration((task.total - task.completed) / rate)}"
        return text

    def _emit(self, task: _PlainTask, now: float) -> None:
        if self.disable:
            return
        stream = self.stream or sys.stderr
        print(self._format(task, now), file=stream, flush=True)


def progress_bar(transient: bool = False) -> Progress | PlainProgress:
    """A rich Progress (count, elapsed, ETA) in a terminal, else `PlainProgress`; a context manager."""
    if not _console.is_terminal:
        return PlainProgress()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=_console,
        transient=transient,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar; `total` defaults to `len(items)` when available."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar() as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
