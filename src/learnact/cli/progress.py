"""Progress of a study on the terminal: a rich bar, plain lines in logs, or nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["study_progress", "report_progress", "format_duration"]

Progress = Callable[[int, int, str], None]


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@contextmanager
def _rich_bar(stream: TextIO) -> Iterator[Progress]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    bar = RichProgress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                       TextColumn("{task.description}"), console=Console(file=stream))
    task: list[TaskID] = []

    def update(done: int, total: int, run_id: str) -> None:
        if not task:  # created at the first call, so skipped runs do not count toward the speed
            task.append(bar.add_task("", total=total, completed=done))
        bar.update(task[0], completed=done, total=total, description=run_id)

    with bar:
        yield update


def _plain_lines(stream: TextIO) -> Progress:
    start = time.perf_counter()
    first: list[int] = []

    def update(done: int, total: int, run_id: str) -> None:
        if not first:
            first.append(done)
            print(f"learnact: {total} runs, {done} already finished", file=stream, flush=True)
            if not run_id:
                return
        elapsed = time.perf_counter() - start
        made = done - first[0]
        eta = format_duration(elapsed / made * (total - done)) if made else "?"
        print(f"learnact: [{done}/{total}] elapsed {format_duration(elapsed)}, ETA {eta}: {run_id}",
              file=stream, flush=True)

    return update


@contextmanager
def study_progress(quiet: bool, stream: TextIO | None = None) -> Iterator[Progress | None]:
    """A ``progress(done, total, run_id)`` callback for :func:`~learnact.experiment.run_study`.

    Args:
        quiet: Show nothing (yields ``None``).
        stream: Where to write (default: standard error). A terminal gets a
            bar with runs done / total, elapsed time and ETA; anything else one
            plain line per finished run.
    """
    stream = stream if stream is not None else sys.stderr
    if quiet:
        yield None
    elif stream.isatty():
        with _rich_bar(stream) as update:
            yield update
    else:
        yield _plain_lines(stream)


def report_progress(quiet: bool, stream: TextIO | None = None) -> Callable[[str], None] | None:
    """A ``progress(line)`` callback for :func:`~learnact.reporting.build_report`: on a terminal, one line per
    figure (or per data set of a suite) as it is saved; ``None`` (silent) when quiet or not a terminal."""
    stream = stream if stream is not None else sys.stderr
    if quiet or not stream.isatty():
        return None

    def show(line: str) -> None:
        print(f"learnact: report: {line}", file=stream, flush=True)

    return show
