"""Progress of a study on the terminal: a rich bar, plain lines in logs, or nothing."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from .._processes import DISPLAY_THREAD

__all__ = ["REDRAW_S", "study_progress", "report_progress", "format_duration"]

Progress = Callable[[int, int, str], None]

REDRAW_S = 0.25
"""Seconds between two redraws of the terminal's progress bar: a finished run shows at the next one, and the
elapsed time runs on between runs."""

_DISPLAY_LOCK = threading.RLock()
# Held for every step of the bar (a run's update, a redraw) and by every fork of this process, from the fork's
# start to its end in both processes: the redraw thread is then never halfway through writing to the terminal
# (holding its stream's lock, rich's console lock) when a fork copies the process, and a forked worker cannot
# hang on a lock that no thread of its own will release. That is what lets training fork its workers while the bar
# runs (learnact._processes.can_fork), as it does without a terminal.
_STREAMS: list[tuple[TextIO, TextIO]] = []
# While a bar runs, rich has replaced sys.stdout and sys.stderr by proxies that print above the bar; these are
# the streams they replaced. A forked worker writes to these directly: its copy of the proxies would draw a
# second bar.


def _in_forked_child() -> None:
    _DISPLAY_LOCK.release()
    if _STREAMS:
        sys.stdout, sys.stderr = _STREAMS[-1]


os.register_at_fork(before=_DISPLAY_LOCK.acquire, after_in_parent=_DISPLAY_LOCK.release,
                    after_in_child=_in_forked_child)


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

    # rich's own refresh thread would stop training from forking its workers (learnact._processes.can_fork):
    # the bar is redrawn by a thread of ours instead, each redraw under _DISPLAY_LOCK
    bar = RichProgress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                       TextColumn("{task.description}", markup=False),  # a run id holds the user's variant name
                       console=Console(file=stream), auto_refresh=False)
    task: list[TaskID] = []
    stop = threading.Event()

    def update(done: int, total: int, run_id: str) -> None:
        with _DISPLAY_LOCK:
            if not task:  # created at the first call, so skipped runs do not count toward the speed
                task.append(bar.add_task("", total=total, completed=done))
            # no redraw here: the redraw thread shows it within REDRAW_S. Drawn at each of the paper study's 76
            # updates, the bar cost 0.12-0.16 s, most of it while the run folders were written, before the leaderboard
            bar.update(task[0], completed=done, total=total, description=run_id)

    def redraw() -> None:
        while not stop.wait(REDRAW_S):
            with _DISPLAY_LOCK:
                bar.refresh()

    streams = (sys.stdout, sys.stderr)
    with bar:
        _STREAMS.append(streams)
        thread = threading.Thread(target=redraw, name=DISPLAY_THREAD, daemon=True)
        thread.start()
        try:
            yield update
        finally:
            stop.set()
            thread.join()
            _STREAMS.remove(streams)


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
