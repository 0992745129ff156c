"""Seed aggregates per variant and the leaderboard, both from the tidy results table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import dataset_label
from .metrics import HEADLINE_METRICS, METRICS, table_task, task_metrics
from .quantities import describe_quantity
from .results import VARIANT_COLUMNS, variant_fields
from .statistics import SeedSummary, summarize_seed_rows, summarize_seeds
from .status import diverged_counts, excluded_note, finished_mask, finished_rows

__all__ = ["leaderboard", "seed_aggregates", "COST_COLUMNS", "AGGREGATE_COLUMNS"]

AGGREGATE_COLUMNS = ("variant", "metric", "group", "label", "higher_is_better", "n", "n_diverged", "mean", "std",
                     "sem", "ci_low", "ci_high", "median", "q1", "q3", "iqr", "min", "max")
"""Leading columns of :func:`seed_aggregates`; the variant's fields follow."""

COST_COLUMNS = ("n_params", "train_time_s", "best_epoch", "epochs_run", "peak_memory_mb", "flops_per_sample",
                "step_latency_ms", "activation_bytes_per_sample")


def _several_datasets(tidy: pd.DataFrame) -> bool:
    return "dataset" in tidy.columns and tidy["dataset"].astype(str).nunique() > 1


def _by_dataset(tidy: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``(label, rows)`` per data set of a suite's tidy table, in table order."""
    out = []
    for name in dict.fromkeys(tidy["dataset"].astype(str)):
        sub = tidy[tidy["dataset"].astype(str) == name]
        sub.attrs = dict(tidy.attrs)
        out.append((dataset_label(name), sub))
    return out


def _check_tidy(table: object, caller: str) -> None:
    """Raise ``TypeError`` unless ``table`` is a data frame (a study folder's path had failed on ``.empty``)."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{caller} takes the tidy results table (tidy_results(STUDY_FOLDER) or "
                        f"load_results(STUDY_FOLDER)), got {type(table).__name__}")


def leaderboard(table: pd.DataFrame, sort_by: str = "roc_auc", *,
                aggregates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean and sample std over the finished seeds per variant, sorted by ``sort_by`` (best first).

    The numbers are :func:`seed_aggregates`' (the one computation behind the
    terminal leaderboard, ``leaderboard.csv`` and the report's tables), over
    the tidy results table (:func:`~learnact.evaluation.results.tidy_results`
    or :func:`~learnact.evaluation.results.load_results`).
    Diverged runs are left out of every statistic and counted in
    ``n_diverged`` (:mod:`~learnact.evaluation.status`); ``n_seeds`` counts
    finished runs. Non-finite values are dropped. A variant with no finished
    run has NaN statistics and comes last.

    A suite (runs on several data sets) gets one leaderboard per data set,
    stacked, with a leading ``dataset`` column (the data set's label).

    Args:
        table: The tidy results table.
        sort_by: A metric of :data:`~learnact.evaluation.metrics.METRICS`.
        aggregates: ``seed_aggregates(table)`` when the caller has computed it already (``learnact run``
            hands the same to the report), else computed here.

    Columns: ``variant, n_seeds, n_diverged``, then ``<metric>_mean, <metric>_std`` for each metric of
    the study's task (classification or regression; a ``sort_by`` of the other task falls back to the task's
    headline metric, R² for regression),
    ``time_mean, time_std, params_mean``, then the cost of the variant trained
    alone (:mod:`learnact.training.cost`; NaN for runs saved without it):
    ``flops_per_sample_mean``, ``step_latency_ms_mean``, ``step_latency_ms_std``,
    ``activation_bytes_per_sample_mean``; ``attrs["excluded"]`` holds the
    :func:`~learnact.evaluation.status.excluded_note` sentence.
    """
    _check_tidy(table, "leaderboard")
    if table.empty:
        return pd.DataFrame()
    if "metric" not in table.columns:
        raise ValueError("leaderboard needs the tidy results table (one row per run and quantity: tidy_results "
                         f"or load_results); got columns {list(table.columns)[:6]}")
    tidy = table
    if _several_datasets(tidy):  # a suite: one leaderboard per data set, stacked
        parts = [leaderboard(sub, sort_by).assign(dataset=name) for name, sub in _by_dataset(tidy)]
        board = pd.concat(parts, ignore_index=True)
        board = board[["dataset", *[c for c in board.columns if c != "dataset"]]]
        board.attrs["excluded"] = excluded_note(diverged_counts(tidy))
        return board
    counts = diverged_counts(tidy)
    agg = seed_aggregates(tidy) if aggregates is None else aggregates
    stats = {(str(r.variant), str(r.metric)): (float(r.mean), float(r.std))
             for r in agg[["variant", "metric", "mean", "std"]].itertuples(index=False)}
    finished = finished_rows(tidy)
    run_key = "run_id" if "run_id" in finished.columns else "seed"
    nan = (float("nan"), float("nan"))
    out = []
    present = set(tidy["metric"].astype(str)) if "metric" in tidy.columns else set()
    scored = [m for m in METRICS if m in present] or task_metrics("classification")
    for variant in counts:
        runs = finished.loc[finished["variant"].astype(str) == variant, run_key].nunique()
        row: dict[str, object] = {"variant": variant, "n_seeds": int(runs), "n_diverged": counts[variant]}
        for name in [*scored, "train_time_s"]:
            key = "time" if name == "train_time_s" else name
            row[f"{key}_mean"], row[f"{key}_std"] = stats.get((variant, name), nan)
        row["params_mean"] = stats.get((variant, "n_params"), nan)[0]
        for name, spread in (("flops_per_sample", False), ("step_latency_ms", True),
                             ("activation_bytes_per_sample", False)):
            mean, std = stats.get((variant, name), nan)
            row[f"{name}_mean"] = mean
            if spread:
                row[f"{name}_std"] = std
        out.append(row)
    board = pd.DataFrame(out)
    if sort_by not in METRICS:  # a typo had sorted by ROC-AUC without a word
        from .._checks import did_you_mean

        raise ValueError(f"sort_by: unknown metric {sort_by!r}{did_you_mean(sort_by, list(METRICS))}; metrics: "
                         f"{', '.join(METRICS)}")
    if sort_by not in scored:  # the default roc_auc of a regression study: its headline metric, R², instead (the
        sort_by = next((m for m in HEADLINE_METRICS[table_task(tidy)] if m in scored), scored[0])  # report's)
    asc = not METRICS[sort_by].higher_is_better if sort_by in METRICS else False
    board = board.sort_values(f"{sort_by}_mean", ascending=asc, kind="stable", na_position="last")
    board = board.reset_index(drop=True)
    board.attrs["excluded"] = excluded_note(counts)
    return board


def seed_aggregates(tidy: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Summaries over seeds of every quantity of every variant.

    Args:
        tidy: A tidy results table (:func:`~learnact.evaluation.results.tidy_results`).
        confidence: Coverage of the t interval of the mean.

    Diverged runs (``status``) are left out of every statistic: ``n``
    counts the finite values of finished runs and ``n_diverged`` the
    variant's diverged runs (:mod:`~learnact.evaluation.status`); a variant
    whose every run diverged still gets its rows, with ``n = 0``.

    A suite's table (several data sets) is computed per data set and
    stacked; the ``dataset`` variant field tells the data sets apart.

    Returns:
        One row per variant and quantity, in table order, with columns
        :data:`AGGREGATE_COLUMNS` (``n`` counts finite values; ``std`` is the
        sample std; ``ci_low``/``ci_high`` the t interval, NaN when ``n < 2``;
        ``q1``/``q3``/``iqr`` the quartiles) followed by the variant's fields
        (:data:`~learnact.evaluation.results.VARIANT_COLUMNS`).

    Raises:
        ValueError: ``tidy`` lacks the ``variant``, ``metric`` or ``value`` column.
    """
    missing = [c for c in ("variant", "metric", "value") if c not in tidy.columns]
    if missing:
        raise ValueError(f"tidy table lacks columns {missing}; build it with tidy_results(study_dir)")
    if _several_datasets(tidy):  # a suite: per data set (its rows carry the dataset column), stacked
        return pd.concat([seed_aggregates(sub, confidence) for _, sub in _by_dataset(tidy)], ignore_index=True)
    counts = diverged_counts(tidy)
    finished = finished_mask(tidy).to_numpy()
    values = tidy["value"].to_numpy(dtype=float)
    variants, metrics = tidy["variant"].to_numpy(), tidy["metric"].to_numpy()
    # the rows of each (variant, metric), groups in order of appearance: positions into plain arrays
    # (a pandas group and .loc per quantity cost ~0.3 ms each, most of a leaderboard's time)
    group = tidy.groupby(["variant", "metric"], sort=False).ngroup()  # NaN where a name is missing
    kept = np.flatnonzero(group.notna().to_numpy())  # as the groupby, rows without both names are left out
    codes = group.to_numpy()[kept]
    order = np.argsort(codes, kind="stable")
    groups = [rows for rows in np.split(kept[order], np.flatnonzero(np.diff(codes[order])) + 1) if len(rows)]
    seeds = [values[rows[finished[rows]]] for rows in groups]
    seeds = [v[np.isfinite(v)] for v in seeds]
    # the groups with as many finite values as each other are summarised together (summarize_seed_rows: the same
    # numbers as one by one, without numpy's overhead per call for each of hundreds of groups)
    summaries: list[SeedSummary | None] = [None] * len(groups)
    by_count: dict[int, list[int]] = {}
    for g, v in enumerate(seeds):
        by_count.setdefault(len(v), []).append(g)
    for count, members in by_count.items():
        found = ([summarize_seeds(seeds[g], confidence) for g in members] if count == 0
                 else summarize_seed_rows(np.stack([seeds[g] for g in members]), confidence))
        for g, summary in zip(members, found, strict=True):
            summaries[g] = summary
    out = []
    for rows, s in zip(groups, summaries, strict=True):
        assert s is not None  # every group is in one count's members
        variant, metric = variants[rows[0]], metrics[rows[0]]
        q = describe_quantity(str(metric))
        out.append({"variant": variant, "metric": metric, "group": q.group, "label": q.label,
                    "higher_is_better": q.higher_is_better, "n_diverged": counts[str(variant)], **vars(s)})
    table = pd.DataFrame(out, columns=list(AGGREGATE_COLUMNS))
    table["higher_is_better"] = table["higher_is_better"].astype(object)  # True / False / None
    if table.empty:
        return table
    fields = variant_fields(tidy)
    extra = [c for c in VARIANT_COLUMNS if c in fields.columns]
    return table.merge(fields[["variant", *extra]], on="variant", how="left", sort=False)
