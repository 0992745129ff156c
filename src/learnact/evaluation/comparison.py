"""Paired comparisons of every variant against a reference variant on shared seeds.

A seed fixes the data split as well as the initialisation, so two variants
run on the same seed are paired: the per-seed difference removes the split's
effect. For each metric and each variant the table gives the mean difference
with its interval, Nadeau and Bengio's corrected resampled t-test, the
Wilcoxon signed-rank test, win/tie/loss counts, and Holm-adjusted p-values
across the variants compared on that metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._checks import did_you_mean
from .metrics import HEADLINE_METRICS, table_task
from .quantities import describe_quantity
from .statistics import corrected_resampled_ttest, holm_adjust, wilcoxon_signed_rank, win_tie_loss
from .status import finished_mask

__all__ = ["DEFAULT_COMPARISON_METRICS", "COMPARISON_COLUMNS", "reference_choice", "resolve_reference",
           "paired_comparisons"]

DEFAULT_COMPARISON_METRICS = HEADLINE_METRICS["classification"]
"""The paper's headline metrics (a regression study's default is ``HEADLINE_METRICS["regression"]``)."""

COMPARISON_COLUMNS = (
    "metric", "variant", "reference", "higher_is_better", "comparable", "status", "n_shared", "n_diverged", "seeds",
    "mean_variant", "mean_reference", "mean_diff", "std_diff", "ci_low", "ci_high", "effect_size",
    "t_stat", "df", "p_value", "p_holm", "wilcoxon_stat", "wilcoxon_p", "wilcoxon_p_holm",
    "wins", "ties", "losses", "n_train", "n_test", "test_train_ratio",
)
"""Columns of :func:`paired_comparisons`, in order."""


def _variants(tidy: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(tidy["variant"].astype(str)))


NO_SPREAD = "no spread over seeds: no t-test"
"""A comparison's status where every shared seed's difference is the same, and not 0: the t-test has no spread
to measure (no p-value, no interval); the Wilcoxon test and W/T/L still speak."""


def resolve_reference(tidy: pd.DataFrame, reference: str | None = None, by: str | None = None) -> str:
    """The variant the others are compared with: :func:`reference_choice` without its reason."""
    return reference_choice(tidy, reference, by)[0]


def reference_choice(tidy: pd.DataFrame, reference: str | None = None, by: str | None = None) -> tuple[str, str]:
    """The variant the others are compared with, and how it was chosen (for a table's title).

    In order: ``reference`` if given (``"given"``); else the study's
    ``reference`` field (``tidy.attrs["reference"]``, set from ``study.json``
    by :func:`~learnact.evaluation.results.tidy_results`; ``"the study's
    reference"``); else the fixed activation variant with the best mean
    ``by`` (default: the task's primary metric) over its finished seeds
    (``"best fixed baseline by ROC-AUC"``, ``"... by R2"``); else, with no
    fixed variant that has one, the best variant overall (``"best variant by
    ..."``); else (no finished run anywhere) the first variant (``"first
    variant: no finished run"``).

    Raises:
        ValueError: ``reference`` (or the study's reference) is not a variant
            of the table; the message suggests the closest name.
    """
    names = _variants(tidy)
    if not names:
        raise ValueError("the results table has no runs; nothing to compare")
    if reference is None:
        study_ref = tidy.attrs.get("reference")
        if study_ref is not None:
            if study_ref not in names:
                raise ValueError(f"the study's reference {study_ref!r} has no finished runs; "
                                 f"pass a reference, one of: {', '.join(names)}")
            return str(study_ref), "the study's reference"
    elif reference not in names:
        raise ValueError(f"unknown reference {reference!r}{did_you_mean(reference, names)}; "
                         f"variants: {', '.join(names)}")
    else:
        return reference, "given"
    by = by or HEADLINE_METRICS[table_task(tidy)][0]
    q = describe_quantity(by)
    if not (tidy["metric"] == by).any():
        raise ValueError(f"cannot choose a default reference: no {by!r} values in the table")
    rows = tidy[(tidy["metric"] == by) & finished_mask(tidy) & np.isfinite(tidy["value"].astype(float))]
    fixed = rows[rows["kind"] == "fixed"] if "kind" in rows.columns else rows.iloc[0:0]
    pool = fixed if not fixed.empty else rows
    if pool.empty:
        return names[0], "first variant: no finished run"
    means = pool.groupby("variant", sort=False)["value"].mean()
    best = means.idxmin() if q.higher_is_better is False else means.idxmax()
    return str(best), f"best {'fixed baseline' if not fixed.empty else 'variant'} by {q.label}"


def _per_seed(tidy: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """Seeds x variants tables of ``metric``'s rows (selected once): its ``value`` and the runs' split sizes
    ``n_train`` and ``n_test``, the latter two on the seeds and variants of the first."""
    rows = tidy[tidy["metric"] == metric]
    values = rows.pivot_table(index="seed", columns="variant", values="value", aggfunc="mean", sort=True,
                              dropna=False)
    return {"value": values, **{c: rows.pivot_table(index="seed", columns="variant", values=c, aggfunc="mean",
                                                    sort=True, dropna=False)
                                .reindex(index=values.index, columns=values.columns) for c in ("n_train", "n_test")}}


def _mean_of_present(values: np.ndarray) -> float:
    """The mean of the values that are not NaN (NaN where none is), as pandas' ``Series.mean`` takes it."""
    present = values[~np.isnan(values)]
    return float(present.mean()) if len(present) else float("nan")


def _diverged_seeds(tidy: pd.DataFrame) -> dict[str, set[int]]:
    """Per variant, the seeds whose run diverged."""
    bad = tidy[~finished_mask(tidy)]
    return {str(v): {int(s) for s in g["seed"]} for v, g in bad.groupby("variant", sort=False)}


def paired_comparisons(
    tidy: pd.DataFrame,
    reference: str | None = None,
    metrics: Sequence[str] | None = None,
    *,
    confidence: float = 0.95,
    tie_tol: float = 1e-12,
    directions: Mapping[str, bool | None] | None = None,
    test_train_ratio: float | None = None,
) -> pd.DataFrame:
    """Compare every variant with the reference on the seeds both finished.

    A seed is shared when both variants have a finished run on it with a
    finite value (:mod:`~learnact.evaluation.status`): a diverged run on
    either side removes its seed from the pair, and ``n_diverged`` counts the
    seeds lost that way.

    For each metric and variant, with ``d_j = x_variant - x_reference`` on the
    ``n`` shared seeds: the mean difference and its interval, which uses the
    Nadeau--Bengio corrected variance ``(1/n + n_test/n_train) * var(d)``
    (so it agrees with the corrected t-test), the corrected t statistic and
    p-value, the Wilcoxon signed-rank test, win/tie/loss counts (a win is a
    seed where the variant is better in the metric's direction), and
    Holm-adjusted p-values over the comparable variants of the same metric
    (each test adjusted separately). ``n_train`` is the number of rows the
    weights were fitted on (the validation rows, used for early stopping
    only, are not counted: the more conservative choice) and ``n_test`` the
    test rows, both from the runs' ``preprocessing.json`` split sizes.

    A variant with fewer than two shared seeds is reported with
    ``comparable=False``, ``status="not comparable (...)"`` (saying how many
    seeds diverged) and no numbers (NaN / missing).

    Args:
        tidy: A tidy results table (:func:`~learnact.evaluation.results.tidy_results`).
        reference: Reference variant; see :func:`resolve_reference`.
        metrics: Quantities to compare (any name of the tidy table's ``metric``; one given twice counts once,
            where it first appears); default: the task's headline metrics
            (:data:`~learnact.evaluation.metrics.HEADLINE_METRICS`).
        confidence: Coverage of the interval of the mean difference.
        tie_tol: Differences with ``|d| <= tie_tol * max(|variant|, |reference|)`` (relative to the seed's
            values) count as ties (W/T/L) and as zero differences (Wilcoxon).
        directions: Whether higher is better, per metric name, for metrics
            outside the quantity registry (a user's own results,
            :func:`~learnact.evaluation.user_results.read_runs_csv`); other
            metrics take the registry's direction.
        test_train_ratio: ``n_test / n_train`` of the variance correction, in
            place of the split sizes of the table (``0`` gives the ordinary
            paired t-test: right when every seed tests on the same rows).

    Returns:
        One row per metric and non-reference variant (metric-major, variants
        in table order), with columns :data:`COMPARISON_COLUMNS`:
        ``comparable``/``status``; ``n_shared`` and ``seeds`` (comma-joined),
        ``n_diverged`` (seeds where the variant or the reference diverged);
        ``mean_variant``/``mean_reference`` over the shared seeds;
        ``mean_diff``, ``std_diff`` (sample std of ``d``), ``ci_low``/``ci_high``;
        ``effect_size`` = ``mean_diff / std_diff`` (paired Cohen's d_z);
        ``t_stat``, ``df``, ``p_value``, ``p_holm``; ``wilcoxon_stat``,
        ``wilcoxon_p``, ``wilcoxon_p_holm``; ``wins``/``ties``/``losses``;
        ``n_train``, ``n_test`` and ``test_train_ratio`` used by the correction.
        ``attrs["reference"]`` names the reference.

    Raises:
        ValueError: Unknown reference or metric (with a suggestion), or an
            empty table.
    """
    if not isinstance(tidy, pd.DataFrame):  # a study folder's path had failed with "string indices must be..."
        raise TypeError(f"paired_comparisons takes the tidy results table (tidy_results(STUDY_FOLDER)), got "
                        f"{type(tidy).__name__}")
    if not isinstance(tie_tol, (int, float)) or isinstance(tie_tol, bool) or not 0 <= tie_tol < 1:
        raise ValueError(f"tie_tol must be a relative tolerance in [0, 1), got tie_tol={tie_tol!r}")
    if test_train_ratio is not None and (isinstance(test_train_ratio, bool)
                                         or not isinstance(test_train_ratio, (int, float))
                                         or not 0 <= test_train_ratio < math.inf):
        # NaN had been taken for "not given" and reported as missing split sizes
        raise ValueError(f"test_train_ratio must be a finite number >= 0 (or None: from the split sizes), got "
                         f"test_train_ratio={test_train_ratio!r}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(dict.fromkeys(metrics)) if metrics is not None else HEADLINE_METRICS[table_task(tidy)]
    ref = resolve_reference(tidy, reference)
    present = list(dict.fromkeys(tidy["metric"].astype(str)))
    for m in metrics:
        if m not in present:
            raise ValueError(f"unknown metric {m!r}{did_you_mean(m, present)}; available: {', '.join(present)}")
    others = [v for v in _variants(tidy) if v != ref]
    diverged = _diverged_seeds(tidy)
    finished = tidy[finished_mask(tidy)]
    rows = []
    for metric in metrics:
        higher = (directions[metric] if directions is not None and metric in directions
                  else describe_quantity(metric).higher_is_better)
        tables = _per_seed(finished, metric)
        values = tables["value"]
        # seeds x variants as plain arrays: a pandas selection per variant and quantity had cost most of the
        # comparison's time (0.1 s for the paper study, beside the report's figures)
        frame = values.to_numpy(dtype=float)
        sizes = {c: tables[c].to_numpy(dtype=float) for c in ("n_train", "n_test")}
        seed_ids = [int(s) for s in values.index]
        column = {v: j for j, v in enumerate(values.columns)}
        block: list[dict[str, Any]] = []
        for variant in others:
            lost = len(diverged.get(variant, set()) | diverged.get(ref, set()))
            base = {"metric": metric, "variant": variant, "reference": ref, "higher_is_better": higher,
                    "n_diverged": lost}
            pair = [column[variant], column[ref]] if variant in column and ref in column else None
            shared = (~np.isnan(frame[:, pair]).any(axis=1) if pair is not None
                      else np.zeros(len(seed_ids), dtype=bool))  # the seeds where both have a value
            seeds = [s for s, keep in zip(seed_ids, shared, strict=True) if keep]
            n = len(seeds)
            if n < 2:
                why = f"; {lost} diverged" if lost else ""
                block.append({**base, "comparable": False, "n_shared": n, "seeds": ",".join(map(str, seeds)),
                              "status": f"not comparable ({n} shared seed{'s' if n != 1 else ''}{why}; "
                                        "need 2)"})
                continue
            assert pair is not None  # n >= 2
            x, y = frame[shared, pair[0]], frame[shared, pair[1]]
            d = x - y
            tr, te = (_mean_of_present(sizes[c][shared][:, pair].T.ravel()) for c in ("n_train", "n_test"))
            if test_train_ratio is not None:
                ratio = float(test_train_ratio)
            else:
                ratio = te / tr if np.isfinite(tr) and np.isfinite(te) and tr > 0 else float("nan")
            if not np.isfinite(ratio):
                raise ValueError(f"split sizes missing for variant {variant!r} or {ref!r}; "
                                 "rebuild the table from run folders with preprocessing.json")
            test = corrected_resampled_ttest(d, ratio, confidence)
            # a tie is relative to the values compared: an absolute 1e-12 had tied every seed of a metric of order
            # 1e-13 (halved on every seed: W/T/L 0/5/0, Wilcoxon p 1)
            scale = np.maximum(np.abs(x), np.abs(y))
            tied = np.where(np.abs(d) <= tie_tol * scale, 0.0, d)
            w_stat, w_p = wilcoxon_signed_rank(tied, 0.0)
            wins, ties, losses = win_tie_loss(tied, higher, 0.0)
            block.append({
                **base, "comparable": True, "n_shared": n,
                # every seed's difference the same (and not 0): the t-test has no spread to measure
                "status": NO_SPREAD if test.se == 0 and test.mean_diff != 0 else "ok",
                "seeds": ",".join(map(str, seeds)),
                "mean_variant": float(x.mean()), "mean_reference": float(y.mean()),
                "mean_diff": test.mean_diff, "std_diff": test.std_diff, "ci_low": test.ci_low,
                "ci_high": test.ci_high,
                "effect_size": test.mean_diff / test.std_diff if test.std_diff > 0 else float("nan"),
                "t_stat": test.t, "df": test.df, "p_value": test.p_value,
                "wilcoxon_stat": w_stat, "wilcoxon_p": w_p, "wins": wins, "ties": ties, "losses": losses,
                "n_train": tr, "n_test": te, "test_train_ratio": ratio,
            })
        p_holm = holm_adjust([r.get("p_value", np.nan) for r in block])
        w_holm = holm_adjust([r.get("wilcoxon_p", np.nan) for r in block])
        for r, ph, wh in zip(block, p_holm, w_holm, strict=True):
            r["p_holm"], r["wilcoxon_p_holm"] = float(ph), float(wh)
        rows.extend(block)
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    for col in ("wins", "ties", "losses", "df", "n_diverged"):
        table[col] = table[col].astype("Int64")
    table["comparable"] = table["comparable"].astype(bool)
    table["higher_is_better"] = table["higher_is_better"].astype(object)  # True / False / None
    table.attrs["reference"] = ref
    return table
