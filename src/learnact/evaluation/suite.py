"""A suite: one study over several data sets, and the evidence across them.

A suite's tidy table (:func:`~learnact.evaluation.results.tidy_results`)
holds the runs of every data set (column ``dataset``). Per data set, every
statistic is today's (:func:`per_dataset` gives each data set's own table).
Across data sets, :func:`suite_analysis` aggregates with
:mod:`.suite_statistics`: average ranks of the per-data-set means, Friedman
with the Nemenyi critical difference and Wilcoxon-Holm, the Bayesian
signed-rank test of every variant against the reference, and rliable-style
aggregates over all runs on scores normalised per data set (interquartile
mean, probability of improvement, stratified bootstrap intervals, performance
profiles). All pairings are by data set (and, within a data set, by seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._checks import did_you_mean
from ..config import dataset_label
from .metrics import PRIMARY_METRIC, table_task
from .quantities import describe_quantity
from .status import diverged_counts, finished_mask
from .suite_statistics import (
    FriedmanResult,
    NemenyiResult,
    average_ranks,
    bayesian_signed_rank,
    cd_cliques,
    friedman_test,
    iqm,
    nemenyi_test,
    normalise_scores,
    performance_profile,
    probability_of_improvement,
    stratified_bootstrap_ci,
    wilcoxon_holm,
)

__all__ = ["SuiteAnalysis", "dataset_names", "datasets_with", "is_suite", "per_dataset", "suite_analysis",
           "suite_scores"]


def dataset_names(tidy: pd.DataFrame) -> list[str]:
    """The data sets of a tidy table (``dataset`` column values), in table order."""
    if "dataset" not in tidy.columns:
        return []
    return list(dict.fromkeys(tidy["dataset"].astype(str)))


def is_suite(tidy: pd.DataFrame) -> bool:
    """Whether the table holds runs on more than one data set."""
    return len(dataset_names(tidy)) > 1


def per_dataset(tidy: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{data set label: its rows}`` in table order (each a tidy table of its own, ``attrs`` kept)."""
    out = {}
    for name in dataset_names(tidy):
        sub = tidy[tidy["dataset"].astype(str) == name]
        sub.attrs = dict(tidy.attrs)
        out[dataset_label(name)] = sub
    return out


def suite_scores(tidy: pd.DataFrame, metric: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished runs' ``metric``: per run, and its mean per data set and variant.

    Args:
        tidy: A suite's tidy table.
        metric: The score; default: each data set's primary metric
            (:data:`~learnact.evaluation.metrics.PRIMARY_METRIC`: accuracy for
            classification, R² for regression; both higher is better).

    Returns:
        ``(runs, means)``: ``runs`` has columns ``dataset, variant, seed, value``
        (data set labels); ``means`` is a ``(data sets x variants)`` frame of
        mean values over seeds, NaN where a variant has no finished run.
        Means are rounded to 12 decimals, so equal scores summed in another
        order tie (as they must for ranks and the best mark) instead of
        differing in the last bit.
    """
    if metric is None:
        primary = {d: PRIMARY_METRIC[table_task(sub)] for d, sub in tidy.groupby("dataset", sort=False)}
        wanted = tidy["dataset"].map(primary)
        rows = tidy[(tidy["metric"] == wanted) & finished_mask(tidy)]
    else:
        rows = tidy[(tidy["metric"] == metric) & finished_mask(tidy)]
    rows = rows[np.isfinite(rows["value"].astype(float))]
    runs = pd.DataFrame({"dataset": rows["dataset"].astype(str).map(dataset_label), "variant": rows["variant"],
                         "seed": rows["seed"].astype(int), "value": rows["value"].astype(float)})
    order_d = [dataset_label(d) for d in dataset_names(tidy)]
    order_v = list(dict.fromkeys(tidy["variant"].astype(str)))
    means = runs.groupby(["dataset", "variant"], sort=False)["value"].mean().round(12).unstack("variant")
    return runs.reset_index(drop=True), means.reindex(index=order_d, columns=order_v)


@dataclass
class SuiteAnalysis:
    """Everything a suite's report and ``learnact compare`` show across data sets.

    Attributes:
        metric: The score compared (higher or lower is better: ``higher_is_better``).
        reference: The variant the Bayesian tests and win/tie/loss compare against.
        means: ``(data sets x variants)`` mean scores over seeds (complete rows only).
        dropped: Data sets left out because a variant had no finished run there.
        without_metric: ``{data set: its task}`` of the data sets left out because they do not record
            ``metric`` (the classification data sets of a suite compared by ``r2``).
        ranks: Average rank per variant (1 = best), best first.
        friedman: Friedman's test (``None`` with fewer than 3 variants or 2 data sets).
        nemenyi: Nemenyi's post-hoc test and critical difference (as ``friedman``).
        wilcoxon: Pairwise Wilcoxon-Holm tests over data sets.
        cliques: Groups no Nemenyi test tells apart (the CD diagram's bars).
        bayes: Per variant, ``P(variant better), P(equivalent), P(reference better)`` with ``rope``.
        rope: Half-width of the region of practical equivalence, in score units.
        wtl: Per variant, data sets won / tied (within ``rope``) / lost against the reference.
        iqm: Per variant, the IQM of the normalised run scores and its stratified bootstrap interval.
        poi: ``(variants x variants)``: P(row better than column) over data sets.
        poi_ci: Per (row, column), the bootstrap interval of :attr:`poi`.
        profiles: Per variant, ``P(normalised score > tau)`` at :attr:`taus`.
        taus: Thresholds of the performance profiles.
        confidence: Level of every interval.
        excluded: The sentence on diverged runs left out of the means (per variant, with the data sets they
            diverged on), ``""`` when none diverged (:func:`~learnact.evaluation.status.excluded_note`).
        reference_how: How :attr:`reference` was chosen (``"given"``, ``"the study's reference"``, ``"best
            fixed baseline by average rank"``, ``"best variant by average rank"``).
    """

    metric: str
    higher_is_better: bool
    reference: str
    means: pd.DataFrame
    dropped: list[str]
    ranks: pd.Series
    friedman: FriedmanResult | None
    nemenyi: NemenyiResult | None
    wilcoxon: pd.DataFrame
    cliques: list[list[str]]
    bayes: pd.DataFrame
    rope: float
    wtl: pd.DataFrame
    iqm: pd.DataFrame
    poi: pd.DataFrame
    poi_ci: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    profiles: pd.DataFrame = field(default_factory=pd.DataFrame)
    taus: np.ndarray = field(default_factory=lambda: np.linspace(0, 1, 101))
    confidence: float = 0.95
    without_metric: dict[str, str] = field(default_factory=dict)
    reference_how: str = "given"
    excluded: str = ""


def suite_analysis(tidy: pd.DataFrame, metric: str | None = None, reference: str | None = None, *,
                   rope: float = 0.01, alpha: float = 0.05, reps: int = 1000, seed: int = 0) -> SuiteAnalysis:
    """Statistics across the data sets of a suite (see the module docstring).

    Args:
        tidy: A suite's tidy table (several data sets).
        metric: A performance metric (its direction comes from the metric registry); default: each data
            set's primary metric (:func:`suite_scores`).
        reference: The variant to compare against (default: the study's reference, else the fixed baseline
            with the best average rank, else the best-ranked variant).
        rope: Region of practical equivalence for the Bayesian test and ties, in ``metric`` units.
        alpha: Level of the Nemenyi critical difference and the cliques.
        reps: Bootstrap replicates of the IQM and probability-of-improvement intervals.
        seed: Seed of the bootstrap and the Bayesian test's posterior samples.

    Only the data sets that record ``metric`` are compared (a suite of both tasks compared by ``r2`` ranks its
    regression data sets; the others are listed in :attr:`SuiteAnalysis.without_metric`).

    Raises:
        ValueError: An unknown metric, fewer than 2 data sets that record it, fewer than 2 of those where
            every variant finished (each message names the data sets), fewer than 2 variants, or an unknown
            reference.
    """
    higher = metric is None or describe_quantity(metric).higher_is_better is not False
    without: dict[str, str] = {}
    if metric is not None:
        tidy, without = datasets_with(tidy, metric)
    runs, means = suite_scores(tidy, metric)
    complete = means.dropna(axis=0, how="any")
    dropped = [d for d in means.index if d not in complete.index]
    variants = list(means.columns)
    if len(variants) < 2:
        raise ValueError(f"a suite comparison needs at least 2 variants; got {len(variants)} "
                         f"({', '.join(map(str, variants)) or 'none'})")
    if len(complete) < 2:
        raise ValueError(f"a suite comparison needs at least 2 data sets where every variant finished"
                         f"{f' with a finite {metric}' if metric else ''}; got {len(complete)} "
                         f"({', '.join(map(str, complete.index)) or 'none'}): {_why_left_out(tidy, means, metric)}")
    ranks = average_ranks(complete, higher_is_better=higher)
    ref, how = _suite_reference(tidy, variants, ranks, reference)
    friedman = nemenyi = None
    cliques: list[list[str]] = []
    if len(variants) >= 3:
        friedman = friedman_test(complete, higher_is_better=higher)
        nemenyi = nemenyi_test(complete, alpha, higher_is_better=higher)
        cd = nemenyi.critical_difference
        cliques = cd_cliques(nemenyi.ranks, lambda a, b: abs(nemenyi.ranks[a] - nemenyi.ranks[b]) > cd)
    sign = 1.0 if higher else -1.0
    bayes_rows, wtl_rows = [], []
    for v in variants:
        if v == ref:
            continue
        p = bayesian_signed_rank(sign * complete[v].to_numpy(), sign * complete[ref].to_numpy(), rope,
                                 random_state=seed)
        bayes_rows.append({"variant": v, "p_better": p[0], "p_equivalent": p[1], "p_worse": p[2]})
        d = sign * (complete[v] - complete[ref])
        wtl_rows.append({"variant": v, "wins": int((d > rope).sum()), "ties": int((d.abs() <= rope).sum()),
                         "losses": int((d < -rope).sum())})
    kept = runs[runs["dataset"].isin(complete.index)].copy()
    kept["score"] = normalise_scores(kept, "value", higher_is_better=higher)
    per = {v: {d: g["score"].to_numpy() for d, g in kept[kept["variant"] == v].groupby("dataset", sort=False)}
           for v in variants}
    iqm_rows = []
    for i, v in enumerate(variants):
        point, lo, hi = stratified_bootstrap_ci(per[v], lambda m: iqm(np.concatenate(list(m.values()))),
                                                reps=reps, random_state=seed + i)
        iqm_rows.append({"variant": v, "iqm": point, "ci_low": lo, "ci_high": hi})
    poi = pd.DataFrame(np.nan, index=variants, columns=variants)
    poi_ci: dict[tuple[str, str], tuple[float, float]] = {}
    for i, a in enumerate(variants):
        for j, b in enumerate(variants):
            if a == b:
                continue
            pairs = {d: (per[a][d], per[b][d]) for d in per[a]}
            point, lo, hi = stratified_bootstrap_ci(pairs, probability_of_improvement, reps=max(1, reps // 4),
                                                    random_state=seed + 1000 * i + j)
            poi.loc[a, b] = point
            poi_ci[(a, b)] = (lo, hi)
    taus = np.linspace(0, 1, 101)
    profiles = pd.DataFrame({v: performance_profile(kept.loc[kept["variant"] == v, "score"], taus)
                             for v in variants}, index=taus)
    return SuiteAnalysis(
        metric=metric or _primary_label(tidy), higher_is_better=higher, reference=ref, reference_how=how,
        excluded=_excluded(tidy), means=complete,
        dropped=dropped, ranks=ranks,
        friedman=friedman, nemenyi=nemenyi, wilcoxon=wilcoxon_holm(complete), cliques=cliques,
        bayes=pd.DataFrame(bayes_rows), rope=rope, wtl=pd.DataFrame(wtl_rows), iqm=pd.DataFrame(iqm_rows),
        poi=poi, poi_ci=poi_ci, profiles=profiles, taus=taus, without_metric=without)


def _excluded(tidy: pd.DataFrame) -> str:
    """:func:`~learnact.evaluation.status.excluded_note` of a suite, each variant's count followed by the data
    sets its runs diverged on: a variant's mean on a data set may rest on the seeds that remained."""
    counts = diverged_counts(tidy)
    if not any(counts.values()):
        return ""
    runs = tidy[~finished_mask(tidy)].drop_duplicates("run_id")
    where = {str(v): ", ".join(f"{dataset_label(str(d))} {n}" for d, n in
                               g["dataset"].value_counts(sort=False).items())
             for v, g in runs.groupby("variant", sort=False)}
    total = sum(counts.values())
    detail = "; ".join(f"{v}: {n} ({where[v]})" for v, n in counts.items() if n)
    return (f"{total} diverged run{'s' if total != 1 else ''} excluded from the means ({detail}); a variant's "
            "mean on a data set is over its finished seeds there.")


def _suite_reference(tidy: pd.DataFrame, variants: list[str], ranks: pd.Series,
                     reference: str | None) -> tuple[str, str]:
    """The suite's reference and how it was chosen: ``reference``; else the study's; else the fixed baseline of
    the best average rank (``ranks``, best first), else the best-ranked variant (no fixed one): the rule a single
    study's :func:`~learnact.evaluation.comparison.reference_choice` follows, with ranks across data sets for the
    mean of one data set's seeds."""
    from .._checks import did_you_mean

    if reference is not None or tidy.attrs.get("reference") is not None:
        ref = str(reference if reference is not None else tidy.attrs.get("reference"))
        if ref not in variants:
            raise ValueError(f"unknown reference {ref!r}{did_you_mean(ref, variants)}; variants: "
                             f"{', '.join(variants)}")
        return ref, "given" if reference is not None else "the study's reference"
    fixed = set(tidy.loc[tidy["kind"] == "fixed", "variant"].astype(str)) if "kind" in tidy.columns else set()
    ranked = [str(v) for v in ranks.index if str(v) in variants]
    pool = [v for v in ranked if v in fixed]
    if pool:
        return pool[0], "best fixed baseline by average rank"
    return ranked[0], "best variant by average rank"


def _why_left_out(tidy: pd.DataFrame, means: pd.DataFrame, metric: str | None) -> str:
    """Per data set with a missing mean: which variants have no finished run there, which no finite score."""
    finished = tidy[finished_mask(tidy)]
    done = set(zip(finished["dataset"].astype(str).map(dataset_label), finished["variant"].astype(str), strict=True))
    parts = []
    for d in means.index[means.isna().any(axis=1)]:
        missing = [str(v) for v in means.columns if pd.isna(means.loc[d, v])]
        unfinished = [v for v in missing if (d, v) not in done]
        unscored = [v for v in missing if (d, v) in done]
        why = [f"{', '.join(unfinished)} finished no run"] if unfinished else []
        if unscored:
            why.append(f"{', '.join(unscored)} recorded no finite {metric or 'score'}")
        parts.append(f"on {d}, {' and '.join(why)}")
    return "; ".join(parts)


def datasets_with(tidy: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows of the data sets that record ``metric``, and ``{data set label: task}`` of those that do not.

    Raises:
        ValueError: No data set records ``metric`` (an unknown metric, with a suggestion), or only one does
            (naming it and the primary metric of the others).
    """
    names = dataset_names(tidy)
    labels = tidy["dataset"].astype(str)
    recorded = {name: tidy.loc[labels == name, "metric"].astype(str) for name in names}
    have = [name for name in names if (recorded[name] == metric).any()]
    if not have:
        present = list(dict.fromkeys(tidy["metric"].astype(str)))
        raise ValueError(f"no run records metric {metric!r}{did_you_mean(metric, present)}; recorded: "
                         f"{', '.join(present)}")
    lacking = {dataset_label(n): table_task(tidy[labels == n]) for n in names if n not in have}
    only = dataset_label(have[0])
    if len(names) < 2:
        raise ValueError(f"a suite comparison needs at least 2 data sets; the table holds only {only}")
    if len(have) < 2:
        by_task: dict[str, list[str]] = {}
        for d, task in lacking.items():
            by_task.setdefault(task, []).append(d)
        others = ", ".join(f"{', '.join(ds)} {'records' if len(ds) == 1 else 'record'} {PRIMARY_METRIC[task]} "
                           f"instead ({task})" for task, ds in by_task.items())
        raise ValueError(f"a suite comparison of {metric} needs at least 2 data sets that record it; only {only} "
                         f"does ({table_task(tidy[labels == have[0]])}), {others}; leave the metric out to rank "
                         "each data set by its own primary score (accuracy; R2 for regression)")
    kept = tidy[labels.isin(have)]
    kept.attrs = dict(tidy.attrs)
    return kept, lacking



def _primary_label(tidy: pd.DataFrame) -> str:
    """``accuracy``, ``r2``, or ``score (accuracy or R2)`` for a suite of both tasks."""
    tasks = {table_task(sub) for _, sub in tidy.groupby("dataset", sort=False)}
    if len(tasks) == 1:
        return PRIMARY_METRIC[tasks.pop()]
    return "score (accuracy; R2 for regression)"
