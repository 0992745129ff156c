"""Terminal output: progress display and the leaderboard table."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

import pandas as pd

__all__ = ["progress_reporter", "print_leaderboard"]


@contextmanager
def progress_reporter(quiet: bool, total: int) -> Iterator[Callable[[int, int, str], None] | None]:
    """A progress callback: a rich bar on a terminal, plain lines otherwise, nothing if quiet."""
    if quiet:
        yield None
        return
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        bar = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                       transient=True)
        task = bar.add_task("", total=total)
        with bar:
            def update(done: int, n: int, run_id: str) -> None:
                bar.update(task, completed=done, total=n, description=run_id)
            yield update
        return
    start = time.perf_counter()
    step = max(1, total // 20)

    def plain(done: int, n: int, run_id: str) -> None:
        if run_id and (done % step == 0 or done == n):
            elapsed = time.perf_counter() - start
            print(f"[{done}/{n}] {elapsed:6.1f}s {run_id}", file=sys.stderr, flush=True)

    yield plain


def print_leaderboard(table: pd.DataFrame, title: str = "leaderboard") -> None:
    """Print mean ± std per variant (accuracy, F1, ROC-AUC, params, time)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col in ("variant", "n", "accuracy", "F1", "ROC-AUC", "params", "time [s]"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for _, r in table.iterrows():
        pm = lambda k: f"{r[f'{k}_mean']:.4f} ± {r[f'{k}_std']:.4f}"  # noqa: E731
        t.add_row(str(r["variant"]), str(int(r["n_seeds"])), pm("accuracy"), pm("f1"), pm("roc_auc"),
                  f"{r['params_mean']:.0f}", f"{r['time_mean']:.2f} ± {r['time_std']:.2f}")
    Console(width=max(120, Console().width)).print(t)
