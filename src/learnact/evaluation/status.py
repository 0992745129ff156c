"""Finished and diverged runs: the one place that tells them apart and counts them.

A run folder with its DONE marker is either *finished* (trained to its own
stopping rule with finite numbers throughout) or *diverged* (its training
loss, validation loss, weights or gates stopped being finite; training
stopped there and its test metrics are NaN). ``metrics.json`` records which
(``status``, ``diverged_epoch``, ``diverged_reason``).

Every statistic over seeds (the terminal leaderboard and ``leaderboard.csv``,
the seed aggregates behind the report, paired comparisons, gate diagnostics)
is computed over finished runs only, and diverged runs are counted apart
(``n_diverged``). The tables here carry a ``status`` column (the tidy
table of :func:`~learnact.evaluation.results.tidy_results` and its per-run
view :func:`~learnact.evaluation.results.per_run`); :func:`finished_rows`
and :func:`diverged_counts` are how every consumer splits them, and
:func:`excluded_note` is the sentence each output prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..exceptions import RunStoreError

__all__ = ["FINISHED", "DIVERGED", "STATUSES", "run_status", "finished_mask", "finished_rows", "diverged_counts",
           "excluded_note"]

FINISHED = "finished"
"""Status of a run that trained with finite numbers throughout."""

DIVERGED = "diverged"
"""Status of a run whose loss, weights or gates stopped being finite."""

STATUSES = (FINISHED, DIVERGED)


def run_status(metrics: Mapping[str, Any], where: str = "metrics.json") -> str:
    """The status a run's ``metrics.json`` records.

    Folders written before runs carried a ``status`` are read by what they
    do record: a ``diverged_epoch``, or NaN test accuracy (which only
    non-finite predictions give), means diverged.

    Args:
        metrics: The parsed ``metrics.json``.
        where: The file, for the error message.

    Returns:
        :data:`FINISHED` or :data:`DIVERGED`.

    Raises:
        RunStoreError: ``status`` holds anything else.
    """
    status = metrics.get("status")
    if status is None:
        accuracy = metrics.get("accuracy")
        nan_accuracy = isinstance(accuracy, float) and math.isnan(accuracy)
        return DIVERGED if metrics.get("diverged_epoch") is not None or nan_accuracy else FINISHED
    if status not in STATUSES:
        raise RunStoreError(f"{where} has status={status!r}; valid: {', '.join(STATUSES)}. "
                            "Delete the run folder and rerun the study to retrain it")
    return str(status)


def _check(table: pd.DataFrame) -> None:
    if "variant" not in table.columns:
        raise ValueError("the table lacks the 'variant' column; build it with tidy_results")


def finished_mask(table: pd.DataFrame) -> pd.Series:
    """Per row, whether it belongs to a finished run (all rows when the table has no ``status``)."""
    if "status" not in table.columns:  # a table built by hand without statuses: all runs finished
        return pd.Series(True, index=table.index)
    return table["status"] == FINISHED


def finished_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of finished runs of a per-run or tidy table, in table order.

    A table without a ``status`` column counts as finished runs only.
    """
    _check(table)
    return table[finished_mask(table)]


def diverged_counts(table: pd.DataFrame) -> dict[str, int]:
    """Diverged runs per variant, every variant of the table listed (0 if none), in table order.

    Works on a per-run table (one row per run) and on the tidy table (one row
    per run and quantity, counted once per ``run_id``) alike.
    """
    _check(table)
    out = {str(v): 0 for v in dict.fromkeys(table["variant"].astype(str))}
    bad = table[~finished_mask(table)]
    if "run_id" in bad.columns:
        bad = bad.drop_duplicates("run_id")
    for variant, n in bad["variant"].astype(str).value_counts(sort=False).items():
        out[str(variant)] = int(n)
    return out


def excluded_note(counts: Mapping[str, int]) -> str:
    """The sentence every output prints under its statistics: ``""`` when no run diverged.

    Example: ``"3 diverged runs excluded from the statistics (fixed_nan: 2, gated_nan: 1)."``
    """
    bad = {v: n for v, n in counts.items() if n}
    total = sum(bad.values())
    if not total:
        return ""
    runs = "run" if total == 1 else "runs"
    detail = ", ".join(f"{v}: {n}" for v, n in bad.items())
    return f"{total} diverged {runs} excluded from the statistics ({detail})."
