"""Progress of the long commands (``demo``, ``spool replay``, ``dlq replay``, ``export-log``, ``verify --export``).

A bar when the total is known, a running count otherwise, always with the rate,
drawn with Rich on **stderr** so that stdout keeps only the command's result
(scripts parse it); Rich's redirection of stdout is off, so a result printed
while the display runs still goes to stdout. Nothing is drawn when stderr is not a terminal (CI logs, pipes,
cron mail) or with ``--quiet``: the final summary line is the whole output then.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

# Rich is told at most this often (seconds): a million advance() calls cost a counter each, not a redraw.
REFRESH_SECONDS = 0.1


class RateColumn(ProgressColumn):
    """Items per second (Rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


class CountColumn(ProgressColumn):
    """The running count, for a total not known in advance."""

    def render(self, task: Task) -> Text:
        return Text(f"{int(task.completed):,}", style="progress.download")


class CommandProgress:
    """Counts what a command has done and shows it on stderr while it runs; a no-op when quiet.

    Use as a context manager; call ``advance()`` per item (cheap: Rich is updated at most every
    REFRESH_SECONDS). ``done`` is the count so far, shown or not.
    """

    def __init__(self, label: str, total: int | None = None, *, quiet: bool = False,
                 console: Console | None = None) -> None:
        """Args:
            label: what is being counted, e.g. ``"emitting events"``.
            total: how many there will be, or None for a running count.
            quiet: draw nothing (``--quiet``).
            console: where to draw; default a Rich console on stderr (tests pass their own).
        """
        self.done = 0
        self._total = total
        self._next_refresh = 0.0
        self._task: TaskID | None = None
        console = console or Console(stderr=True)
        self._progress: Progress | None = None
        if not quiet and console.is_terminal:
            columns: list[str | ProgressColumn] = [TextColumn("{task.description}")]
            if total is None:
                columns.append(CountColumn())
            else:
                columns += [BarColumn(), MofNCompleteColumn()]
            columns += [RateColumn(), TimeElapsedColumn()]
            self._progress = Progress(*columns, console=console, transient=False, redirect_stdout=False)
            self._task = self._progress.add_task(label, total=total)

    def __enter__(self) -> CommandProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._push()
            self._progress.stop()

    def advance(self, count: int = 1) -> None:
        """``count`` more items done."""
        self.update(self.done + count)

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` items so far, of ``total`` if the work now knows better than at the start."""
        self.done = done
        if total is not None:
            self._total = total
        if self._progress is not None and time.monotonic() >= self._next_refresh:
            self._push()

    def _push(self) -> None:
        assert self._progress is not None and self._task is not None
        self._progress.update(self._task, completed=self.done, total=self._total)
        self._next_refresh = time.monotonic() + REFRESH_SECONDS


@contextmanager
def waiting(label: str, *, quiet: bool = False, console: Console | None = None) -> Iterator[None]:
    """A spinner with the elapsed time on stderr while a step of unknown length runs (Kafka starting).

    Transient: the line disappears when the step ends, the command's own output follows.
    """
    console = console or Console(stderr=True)
    if quiet or not console.is_terminal:
        yield
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, redirect_stdout=False) as spinner:
        spinner.add_task(label, total=None)
        yield
