"""Terminal output: the leaderboard table, a suite's summary, the report's tables."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads when a command runs, not when the CLI starts
    from pathlib import Path

    import pandas as pd

    from ..reporting.render import Table

__all__ = ["print_leaderboard", "print_suite", "print_report_table", "leaderboard_cells", "suite_cells",
           "diverged_lines", "plain_console", "print_whole"]


def plain_console(min_width: int) -> Any:
    """A rich console at least ``min_width`` columns wide that prints text as it is (no console markup).

    Variant, data set and study names come from the user's files, and rich
    read ``model[v2]`` as ``model`` plus a style tag (and ``[bold]x`` as a
    bold ``x``); the ``step [ms]`` header lost its unit the same way.
    """
    from rich.console import Console

    return Console(width=max(min_width, Console().width), markup=False)


def print_whole(table: Any, min_width: int) -> None:
    """Print a rich ``table`` on a :func:`plain_console` of ``min_width`` columns; off a terminal (a log, a pipe),
    where a row that does not fit would be wrapped or a name cut (``spline_grid_siz…`` could stand for two
    variants), at the table's natural width instead."""
    from rich.measure import Measurement

    console = plain_console(min_width)
    if not console.is_terminal:
        with console.capture() as capture:
            console.print(table)
        text = capture.get()
        rows = [line for line in text.splitlines() if line.startswith("│")]
        if len(rows) <= table.row_count and all("…" not in line and line.rstrip().endswith("│") for line in rows):
            console.file.write(text)  # it fits: the rendering just made, not a second one
            return
        needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
        console = plain_console(max(needed, console.width))
    console.print(table)


def print_unclipped(table: Any, min_width: int) -> None:
    """Print a rich ``table`` at least ``min_width`` columns wide, and wider where its columns need it, on a
    terminal too (the terminal wraps the lines): a suite's table of many data sets had lost whole columns (the
    average ranks, W/T/L) and digits at 120 columns, with no sign of it."""
    from rich.measure import Measurement

    console = plain_console(min_width)
    needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
    (plain_console(needed) if needed > console.width else console).print(table)


def _pm(mean: float, std: float, fmt: str) -> str:
    """``mean ± std``; the mean alone with one finished seed; ``-`` with none."""
    if not math.isfinite(mean):
        return "-"
    return f"{mean:{fmt}} ± {std:{fmt}}" if math.isfinite(std) else f"{mean:{fmt}}"


def leaderboard_cells(table: pd.DataFrame) -> list[list[str]]:
    """Display cells of each leaderboard row: variant, n, diverged, accuracy, F1, ROC-AUC (regression: RMSE,
    MAE, R²), params, FLOPs per sample and step latency [ms] of the variant trained alone.

    ``n`` counts finished runs; statistics are over them
    (:func:`learnact.evaluation.leaderboard`).
    """
    out = []
    shown = _shown_metrics(table)
    for _, r in table.iterrows():
        n_div = int(r["n_diverged"]) if "n_diverged" in r else 0
        params = f"{r['params_mean']:.0f}" if math.isfinite(r["params_mean"]) else "-"
        out.append([str(r["variant"]), str(int(r["n_seeds"])), str(n_div),
                    *(_pm(r[f"{m}_mean"], r[f"{m}_std"], ".4f") for m in shown), params,
                    _num(float(r.get("flops_per_sample_mean", math.nan)), ",.0f"),
                    _num(float(r.get("step_latency_ms_mean", math.nan)), ".2f")])
    return out


SHOWN_METRICS = {"classification": ("accuracy", "f1", "roc_auc"), "regression": ("rmse", "mae", "r2")}
"""The metrics the terminal leaderboard shows, by task."""
_HEADERS = {"accuracy": "accuracy", "f1": "F1", "roc_auc": "ROC-AUC", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def _shown_metrics(table: pd.DataFrame) -> tuple[str, ...]:
    task = "regression" if "rmse_mean" in table.columns else "classification"
    return SHOWN_METRICS[task]


def _num(value: float, fmt: str) -> str:
    return f"{value:{fmt}}" if math.isfinite(value) else "-"


def print_leaderboard(table: pd.DataFrame, title: str = "leaderboard") -> None:
    """Print mean ± std over finished seeds per variant: accuracy, F1, ROC-AUC, params, and the cost of
    training it alone.

    A ``diverged`` column counts each variant's diverged runs (left out of the
    statistics), and the table's caption says how many were excluded. The cost
    columns are the variant's FLOPs per sample (forward + backward) and the
    median latency of one training step on one thread
    (:mod:`learnact.training.cost`), ``-`` for runs saved without them.
    """
    from rich.table import Table

    note = str(table.attrs.get("excluded", ""))
    t = Table(title=title, caption=note or None)
    labels = [_HEADERS[m] for m in _shown_metrics(table)]
    # the step column's unit on a second header line: the column stays as narrow as its numbers, so the paper's
    # table still fits 120 columns (off a terminal) with its rows on one line each
    cells = leaderboard_cells(table)
    for col in ("variant", "n", "diverged", *labels, "params", "FLOPs/sample", "step\n[ms]"):
        if col == "variant":  # a name is never cut (on a narrow terminal it folds onto a second line)
            t.add_column(col, justify="left", overflow="fold")
        else:
            t.add_column(col, justify="right")
    for row in cells:
        t.add_row(*row)
    print_whole(t, 120)


def suite_cells(tidy: pd.DataFrame, metric: str | None = None, digits: int = 4) -> tuple[list[str], list[list[str]]]:
    """The suite table's header and rows: per variant (best average rank first), its average rank over the
    data sets where every variant finished, then its mean ``metric`` on each data set (best marked ``*``).

    The numbers are :func:`~learnact.evaluation.suite.suite_scores` and
    :func:`~learnact.evaluation.suite_statistics.average_ranks` of the tidy
    table, the same ones the report's suite table shows.

    Args:
        tidy: A suite's tidy results table (:func:`~learnact.evaluation.tidy_results`).
        metric: The score; default: each data set's primary metric (accuracy; R² for regression).
        digits: Decimals of the default score (a named metric uses its registry format).
    """
    return _suite_rows(*_suite_numbers(tidy, metric), metric, digits)


def _suite_numbers(tidy: pd.DataFrame, metric: str | None) -> tuple[pd.DataFrame, pd.Series | None, bool]:
    """``(means, ranks, higher_is_better)`` of :func:`suite_cells`; ``ranks`` is ``None`` with fewer than two
    complete data sets or variants."""
    from ..evaluation import describe_quantity
    from ..evaluation.suite import suite_scores
    from ..evaluation.suite_statistics import average_ranks

    higher = metric is None or describe_quantity(metric).higher_is_better is not False
    _, means = suite_scores(tidy, metric)
    complete = means.dropna()
    if len(complete) < 2:  # a variant with no finished run on some data set: ranked without it, as the report does
        complete = means.dropna(axis=1)
    ranks = average_ranks(complete, higher) if len(complete) >= 2 and complete.shape[1] >= 2 else None
    return means, ranks, higher


def _suite_rows(means: pd.DataFrame, ranks: pd.Series | None, higher: bool, metric: str | None,
                digits: int) -> tuple[list[str], list[list[str]]]:
    import pandas as pd

    from ..evaluation import describe_quantity

    fmt = f".{digits}f" if metric is None else describe_quantity(metric).fmt
    order = ([*ranks.index, *(v for v in means.columns if v not in ranks.index)] if ranks is not None
             else list(means.columns))  # variants left out of the ranking last
    best = means.max(axis=1) if higher else means.min(axis=1)
    rows = []
    for v in order:
        cells = [("-" if pd.isna(means.loc[d, v]) else
                  f"{means.loc[d, v]:{fmt}}" + ("*" if means.loc[d, v] == best[d] else ""))
                 for d in means.index]
        rows.append([v, "-" if ranks is None or v not in ranks.index else f"{ranks[v]:.2f}", *cells])
    return ["variant", "avg rank", *map(str, means.index)], rows


def print_suite(tidy: pd.DataFrame, title: str, metric: str | None = None) -> None:
    """Print a suite's summary from its tidy table: average rank and mean ``metric`` per data set and variant,
    best marked (:func:`suite_cells`).

    Variant names are never cut; where four decimals do not fit the terminal, three are shown, and data set
    names fold.
    """
    from rich.table import Table

    console = plain_console(120)
    numbers = _suite_numbers(tidy, metric)
    header, rows = _suite_rows(*numbers, metric, 4)
    widest = max((len(c) for r in rows for c in r[1:]), default=7)
    name_width = max((len(r[0]) for r in rows), default=7)
    if name_width + 10 + (len(header) - 2) * (widest + 2) > console.width and metric is None:
        header, rows = _suite_rows(*numbers, metric, 3)
    shown = metric or "accuracy (R² for regression)"
    t = Table(caption=f"mean test {shown} over finished seeds, * best on the data set; average rank "
                      "(1 = best) over data sets where every ranked variant finished (\"-\": left out, no "
                      "finished run on some data set)",
              box=None, padding=(0, 1), pad_edge=False, header_style="bold underline")
    for col in header:
        if col == "variant":
            t.add_column(col, justify="left", no_wrap=True, min_width=name_width)
        elif col == "avg rank":
            t.add_column(col, justify="right", no_wrap=True, min_width=len(col))
        else:
            t.add_column(col, justify="right", overflow="fold",
                         min_width=max((len(r[len(t.columns)]) for r in rows), default=4))
    for cells in rows:
        t.add_row(*cells)
    console.print(title, highlight=False, soft_wrap=True)  # a title above a narrow table would wrap
    print_unclipped(t, 120)


def diverged_lines(tidy: pd.DataFrame, study_dir: Path) -> list[str]:
    """One line per variant with diverged runs: which seeds, at which epoch, and why.

    Args:
        tidy: The study's tidy results table (:func:`learnact.evaluation.tidy_results`):
            it says which runs diverged.
        study_dir: The study folder: each diverged run's ``metrics.json`` says
            at which epoch and why.

    Example: ``"fixed_nan: seeds 1, 2 diverged (epoch 1: non-finite training loss)"``; seeds of another cause
    follow with theirs (``"...; seed 3 (epoch 2: non-finite validation loss)"``); in a suite, each data set's
    seeds: ``"blow: seeds 2, 3 on wine; 3 on iris diverged (...)"``.
    """
    from .. import store
    from ..evaluation import DIVERGED

    if tidy.empty or "status" not in tidy.columns:
        return []
    from ..config import dataset_label

    columns = ["run_id", "variant", "seed", *(["dataset"] if "dataset" in tidy.columns else [])]
    bad = tidy.loc[tidy["status"] == DIVERGED, columns].drop_duplicates("run_id")
    suite = "dataset" in tidy.columns and tidy["dataset"].nunique() > 1
    lines = []
    for variant, group in bad.groupby("variant", sort=False):
        by_cause: dict[str, list[tuple[str, int]]] = {}  # cause -> (data set, seed) of its runs, in seed order
        for _, run in group.sort_values("seed").iterrows():
            metrics = store.read_metrics(store.run_dir(study_dir, str(run["run_id"])))
            epoch = metrics.get("diverged_epoch")
            when = f"epoch {int(epoch)}" if isinstance(epoch, int | float) and epoch == epoch else "epoch ?"
            cause = f"{when}: {metrics.get('diverged_reason') or 'non-finite values'}"
            by_cause.setdefault(cause, []).append((str(run["dataset"]) if suite else "", int(run["seed"])))
        parts: list[str] = []
        for cause, runs in by_cause.items():  # each cause with its own seeds: two causes had shared one list
            if suite:  # "seeds 2, 3 on wine; 3 on iris": a seed number alone names one run per data set
                datasets = list(dict.fromkeys(d for d, _ in runs))
                seeds = "; ".join(f"{', '.join(str(s) for e, s in runs if e == d)} on {dataset_label(d)}"
                                  for d in datasets)
            else:
                seeds = ", ".join(str(s) for _, s in runs)
            verb = "" if parts else " diverged"
            parts.append(f"seed{'s' if len(runs) > 1 else ''} {seeds}{verb} ({cause})")
        lines.append(f"{variant}: {'; '.join(parts)}")
    return lines


def print_report_table(table: Table, title: str) -> None:
    """Print one of the report's tables (:class:`~learnact.reporting.render.Table`) on the terminal: the same
    cells, bold where the report sets them in bold, its caption and notes under it."""
    from rich.table import Table as RichTable
    from rich.text import Text

    t = RichTable(box=None, padding=(0, 1), pad_edge=False,
                  header_style="bold underline")
    for i, (col, align) in enumerate(zip(table.header, table.align, strict=True)):  # cells never fold, headers may
        t.add_column(col, justify="left" if align == "l" else "right", overflow="fold",
                     min_width=max((len(r[i].text) for r in table.rows), default=4))
    for row in table.rows:  # styled text, not markup: names are printed as they are
        t.add_row(*(Text(c.text, style="bold" if c.bold else "") for c in row))
    plain_console(120).print(title, highlight=False, soft_wrap=True)
    print_unclipped(t, 120)
    caption = " ".join(filter(None, (table.caption, table.notes)))
    if caption:  # a paragraph at the console's width, not a column as narrow as the table
        plain_console(120).print(caption, highlight=False)
