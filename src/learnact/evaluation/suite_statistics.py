"""Statistics across data sets: which variant wins over a benchmark suite.

Per-data-set comparisons (:mod:`.comparison`) pair seeds within one data set.
Across data sets the evidence is aggregated the way the evaluation literature
recommends:

- **Ranks** (Demšar 2006): each data set ranks the variants by their mean
  score; :func:`friedman_test` asks whether the average ranks differ at all,
  :func:`nemenyi_test` compares every pair (its critical difference is what a
  CD diagram draws) and :func:`wilcoxon_holm` is the pairwise alternative of
  Benavoli et al. (2016): Wilcoxon signed-rank tests on the per-data-set
  means, Holm-adjusted. :func:`cd_cliques` groups the variants no test tells
  apart, for the diagram's bars.
- **Bayesian** (Benavoli et al. 2017): :func:`bayesian_signed_rank` gives
  P(A better), P(practically equivalent) and P(B better) with a region of
  practical equivalence.
- **rliable-style aggregates** (Agarwal et al. 2021) over the runs of all data
  sets on normalised scores (:func:`normalise_scores`): the interquartile mean
  (:func:`iqm`), the probability of improvement
  (:func:`probability_of_improvement`), stratified bootstrap confidence
  intervals (:func:`stratified_bootstrap_ci`) and performance profiles
  (:func:`performance_profile`).

Inputs are plain arrays and data frames; nothing here reads the store. Scores
are "higher is better" unless a function takes ``higher_is_better``. The
hand-written procedures are checked against scipy, scikit-posthocs, baycomp
and worked examples in ``tests/evaluation/test_suite_statistics.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .statistics import holm_adjust, wilcoxon_signed_rank

__all__ = [
    "FriedmanResult",
    "NemenyiResult",
    "average_ranks",
    "bayesian_signed_rank",
    "cd_cliques",
    "friedman_test",
    "iqm",
    "nemenyi_test",
    "normalise_scores",
    "performance_profile",
    "probability_of_improvement",
    "stratified_bootstrap_ci",
    "wilcoxon_holm",
]


def _score_table(scores: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """``scores`` (data sets x variants) checked: finite, at least 2 rows and 2 columns; oriented higher-better."""
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores must be a data frame (rows: data sets, columns: variants), "
                        f"got {type(scores).__name__}")
    if scores.shape[0] < 2 or scores.shape[1] < 2:
        raise ValueError(f"scores need at least 2 data sets and 2 variants, got shape {scores.shape}")
    values = scores.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = scores.index[~np.isfinite(values).all(axis=1)].tolist()
        raise ValueError(f"scores must be finite; data sets {bad} hold NaN or infinite means (drop them or the "
                         f"variants that diverged there)")
    return scores.astype(np.float64) if higher_is_better else -scores.astype(np.float64)


def average_ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Average rank of each variant over data sets (1 = best; ties share the mean rank).

    Args:
        scores: One row per data set, one column per variant (e.g. mean test
            accuracy over seeds).
        higher_is_better: Direction of the score.

    Returns:
        Average rank per variant, sorted best first.

    Shape:
        - scores: ``(n_datasets, k)``
        - output: ``(k,)``
    """
    s = _score_table(scores, higher_is_better)
    from scipy import stats  # here, not at import: reading results need not load scipy.stats

    ranks = np.apply_along_axis(stats.rankdata, 1, -s.to_numpy())
    return pd.Series(ranks.mean(axis=0), index=s.columns, name="average_rank").sort_values(kind="stable")


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's test of equal average ranks.

    Attributes:
        statistic: Friedman's chi-square ``12N/(k(k+1)) * (sum_j R_j^2 - k(k+1)^2/4)``
            (scipy's tie-corrected form).
        p_value: Its chi-square (``k - 1`` degrees of freedom) p-value.
        iman_davenport: The F statistic ``(N-1) chi2 / (N(k-1) - chi2)`` Demšar recommends.
        iman_davenport_p: Its p-value on ``(k-1, (k-1)(N-1))`` degrees of freedom.
        n_datasets: ``N``.
        n_variants: ``k``.
        ranks: Average ranks, best first.
    """

    statistic: float
    p_value: float
    iman_davenport: float
    iman_davenport_p: float
    n_datasets: int
    n_variants: int
    ranks: pd.Series


def friedman_test(scores: pd.DataFrame, higher_is_better: bool = True) -> FriedmanResult:
    """Friedman's test (scipy) that all variants have the same average rank.

    When every data set ties all variants (a cost equal for every variant, such as the training time that
    the members of one stack share), no rank differs: ``chi2 = 0``, ``p = 1`` (scipy's tie correction
    divides 0 by 0 there and returns NaN).

    Args:
        scores: ``(n_datasets, k)`` table of per-data-set scores, ``k >= 3``.
        higher_is_better: Direction of the score.
    """
    s = _score_table(scores, higher_is_better)
    n, k = s.shape
    if k < 3:
        raise ValueError(f"Friedman's test needs at least 3 variants, got {k}; compare two with wilcoxon_holm")
    if (s.nunique(axis=1) == 1).all():
        return FriedmanResult(0.0, 1.0, 0.0, 1.0, n, k, average_ranks(scores, higher_is_better))
    from scipy import stats  # here, not at import: reading results need not load scipy.stats

    res = stats.friedmanchisquare(*(s[c].to_numpy() for c in s.columns))
    chi2 = float(res.statistic)
    denom = n * (k - 1) - chi2
    f_stat = float("inf") if denom <= 0 else (n - 1) * chi2 / denom
    f_p = 0.0 if denom <= 0 else float(stats.f.sf(f_stat, k - 1, (k - 1) * (n - 1)))
    return FriedmanResult(chi2, float(res.pvalue), f_stat, f_p, n, k, average_ranks(scores, higher_is_better))


@dataclass(frozen=True)
class NemenyiResult:
    """Nemenyi's all-pairs test after Friedman.

    Attributes:
        critical_difference: ``q_alpha * sqrt(k(k+1) / (6N))``: two variants
            whose average ranks differ by more are significantly different.
        p_values: Symmetric ``(k, k)`` frame of pairwise p-values (1 on the diagonal).
        ranks: Average ranks, best first.
        alpha: The level ``critical_difference`` is for.
    """

    critical_difference: float
    p_values: pd.DataFrame
    ranks: pd.Series
    alpha: float


def nemenyi_test(scores: pd.DataFrame, alpha: float = 0.05, higher_is_better: bool = True) -> NemenyiResult:
    """Nemenyi's post-hoc test on average ranks (Demšar 2006, section 3.2.2).

    ``q_alpha`` is the studentized range quantile over ``sqrt(2)`` (scipy's
    ``studentized_range`` with infinite degrees of freedom); a pair's p-value
    is the studentized range tail at ``|R_i - R_j| * sqrt(2) / se`` with
    ``se = sqrt(k(k+1) / (6N))``.

    Args:
        scores: ``(n_datasets, k)`` table of per-data-set scores.
        alpha: Level of the critical difference, in ``(0, 1)``.
        higher_is_better: Direction of the score.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    s = _score_table(scores, higher_is_better)
    n, k = s.shape
    ranks = average_ranks(scores, higher_is_better)
    se = np.sqrt(k * (k + 1) / (6.0 * n))
    from scipy import stats  # here, not at import: reading results need not load scipy.stats

    q_alpha = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / np.sqrt(2)
    r = ranks.reindex(s.columns).to_numpy()
    z = np.abs(r[:, None] - r[None, :]) / se
    p = np.ones((k, k))
    for i, j in combinations(range(k), 2):
        p[i, j] = p[j, i] = float(stats.studentized_range.sf(z[i, j] * np.sqrt(2), k, np.inf))
    return NemenyiResult(q_alpha * se, pd.DataFrame(np.clip(p, 0, 1), index=s.columns, columns=s.columns),
                         ranks, alpha)


def wilcoxon_holm(scores: pd.DataFrame) -> pd.DataFrame:
    """Pairwise two-sided Wilcoxon signed-rank tests over data sets, Holm-adjusted (Benavoli et al. 2016).

    Args:
        scores: ``(n_datasets, k)`` table of per-data-set scores (a two-sided
            test: the direction of the score does not matter).

    Returns:
        One row per pair: ``a, b, statistic, p_value, p_holm, mean_diff``
        (``mean_diff`` is ``a - b`` in the score's own direction). A pair whose
        data sets all tie gets ``p_value = 1``.
    """
    s = _score_table(scores, True)
    rows = []
    for a, b in combinations(s.columns, 2):
        d = s[a].to_numpy() - s[b].to_numpy()
        stat, p = wilcoxon_signed_rank(d)  # the study comparisons' test (an all-zero d gives p = 1)
        rows.append({"a": a, "b": b, "statistic": stat, "p_value": p, "mean_diff": float(d.mean())})
    out = pd.DataFrame(rows)
    out["p_holm"] = holm_adjust(out["p_value"].to_numpy())
    return out[["a", "b", "statistic", "p_value", "p_holm", "mean_diff"]]


def cd_cliques(ranks: pd.Series, different: Callable[[str, str], bool]) -> list[list[str]]:
    """Maximal runs of rank-adjacent variants that no test tells apart (the bars of a CD diagram).

    Args:
        ranks: Average ranks (any order); the variants are sorted by rank.
        different: ``different(a, b)`` is true when ``a`` and ``b`` differ
            significantly (``|R_a - R_b| > CD`` for Nemenyi, or ``p_holm < alpha``).

    Returns:
        Each clique as variant names in rank order, only cliques of two or more
        that are not contained in another.
    """
    order = list(ranks.sort_values(kind="stable").index)
    cliques: list[list[str]] = []
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and not any(different(order[a], order[j + 1]) for a in range(i, j + 1)):
            j += 1
        if j > i and not any(set(order[i:j + 1]) <= set(c) for c in cliques):
            cliques.append(order[i:j + 1])
    return cliques


def bayesian_signed_rank(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, rope: float = 0.0, *,
                         prior: float = 0.5, n_samples: int = 50_000,
                         random_state: int | None = 0) -> tuple[float, float, float]:
    """Bayesian signed-rank test (Benavoli et al. 2017) of paired per-data-set scores.

    A Dirichlet process posterior over the distribution of ``z = a - b``, with a
    pseudo-observation at 0 of weight ``prior``. Each posterior sample weighs
    the pairs ``(i, j)`` by ``w_i w_j`` and gives the probability mass of
    ``(z_i + z_j) / 2`` above ``rope`` (a better), below ``-rope`` (b better)
    and within (equivalent); the returned probabilities are how often each
    region holds the largest mass.

    Args:
        a, b: Per-data-set scores of the two variants (higher is better), paired by position.
        rope: Half-width of the region of practical equivalence, in score units (``>= 0``).
        prior: Weight of the pseudo-observation at 0 (baycomp's default 0.5).
        n_samples: Posterior samples.
        random_state: Seed of the Dirichlet draws (``numpy.random.RandomState``).

    Returns:
        ``(P(a better), P(equivalent), P(b better))``, summing to one; with
        ``rope = 0`` the middle one is 0.

    Shape:
        - a, b: ``(n_datasets,)``
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape or len(x) < 2:
        raise ValueError(f"a and b must be paired scores of the same length >= 2, got {len(x)} and {len(y)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a and b must be finite (drop the data sets where a variant diverged)")
    if rope < 0 or not np.isfinite(rope):
        raise ValueError(f"rope must be a finite number >= 0, got {rope}")
    if prior <= 0 or n_samples < 1:
        raise ValueError(f"prior must be > 0 and n_samples >= 1, got prior={prior}, n_samples={n_samples}")
    z = np.concatenate([[0.0], x - y])
    pair = z[:, None] + z[None, :]
    above = (pair > 2 * rope) + 0.5 * (pair == 2 * rope)
    below = (pair < -2 * rope) + 0.5 * (pair == -2 * rope)
    weights = np.ones(len(z))
    weights[0] = prior
    w = np.random.RandomState(random_state).dirichlet(weights, n_samples)
    p_a = np.einsum("si,ij,sj->s", w, above, w)
    p_b = np.einsum("si,ij,sj->s", w, below, w)
    if rope > 0:
        mass = np.stack([p_a, 1.0 - p_a - p_b, p_b], axis=1)
    else:
        mass = np.stack([p_a, np.full_like(p_a, -np.inf), 1.0 - p_a], axis=1)
    wins = np.bincount(np.argmax(mass, axis=1), minlength=3) / n_samples
    return float(wins[0]), float(wins[1]), float(wins[2])


def normalise_scores(runs: pd.DataFrame, score: str, *, task: str = "dataset", higher_is_better: bool = True,
                     bounds: Mapping[str, tuple[float, float]] | None = None) -> pd.Series:
    """Min-max normalised scores per data set, so data sets of different difficulty aggregate.

    Each data set's scores map to ``(x - lo) / (hi - lo)``, where ``lo`` and
    ``hi`` are the worst and best score of any run on that data set (or the
    given ``bounds``); for a lower-is-better score (a loss, RMSE) the map is
    reversed so that 1 is always best. A data set whose runs all score the
    same maps to 1.

    Args:
        runs: One row per run, with columns ``task`` and ``score``.
        score: The score column.
        task: The data-set column.
        higher_is_better: Direction of ``score``.
        bounds: Optional ``{data set: (worst, best)}`` instead of the observed range.

    Returns:
        Normalised scores aligned with ``runs``'s index.
    """
    values = runs[score].astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"column {score!r} holds NaN or infinite scores; drop diverged runs before normalising")
    out = pd.Series(np.nan, index=runs.index, name=f"{score}_normalised")
    for name, idx in runs.groupby(task, sort=False).groups.items():
        v = values.loc[idx]
        if bounds is not None and name in bounds:
            worst, best = bounds[name]
        else:
            worst, best = (v.min(), v.max()) if higher_is_better else (v.max(), v.min())
        span = best - worst
        out.loc[idx] = 1.0 if span == 0 else (v - worst) / span
    return out


def iqm(values: np.ndarray | Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% of all values (scipy's ``trim_mean(x, 0.25)``).

    scipy's computation itself (the same partition around the cut points, then
    the mean of the middle slice; a test holds the two equal bit for bit),
    without its array-API dispatch, which cost about 0.6 ms a call: the
    bootstrap intervals of a suite evaluate it thousands of times.

    Shape:
        - values: any; flattened.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) == 0 or not np.isfinite(v).all():
        raise ValueError(f"iqm needs at least one value, all finite; got {len(v)} values")
    low = int(0.25 * len(v))
    high = len(v) - low
    return float(np.mean(np.partition(v, (low, high - 1))[low:high]))


def probability_of_improvement(x: Mapping[str, Sequence[float] | np.ndarray],
                               y: Mapping[str, Sequence[float] | np.ndarray]) -> float:
    """P(X > Y) averaged over data sets (rliable's probability of improvement).

    On each data set ``t`` with runs ``x_1..x_n`` and ``y_1..y_m``:
    ``P_t = (1 / nm) sum_{i,j} [x_i > y_j] + 0.5 [x_i = y_j]`` (the Mann-Whitney
    U statistic over ``nm``); the result is the mean of ``P_t`` over data sets.

    Args:
        x, y: ``{data set: run scores}`` of the two variants, higher is better;
            the same data sets in both.
    """
    if set(x) != set(y) or not x:
        raise ValueError(f"x and y must hold runs on the same data sets, got {sorted(x)} and {sorted(y)}")
    per_task = []
    for t in x:
        a = np.asarray(x[t], dtype=np.float64).reshape(-1)
        b = np.asarray(y[t], dtype=np.float64).reshape(-1)
        if len(a) == 0 or len(b) == 0:
            raise ValueError(f"data set {t!r} has no runs for one of the variants")
        per_task.append(float(np.mean((a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :]))))
    return float(np.mean(per_task))


def stratified_bootstrap_ci(runs: Mapping[str, Sequence[np.ndarray]] | Mapping[str, np.ndarray],
                            statistic: Callable[..., float], *, reps: int = 2000, confidence: float = 0.95,
                            random_state: int | None = 0) -> tuple[float, float, float]:
    """Percentile confidence interval of ``statistic`` by the stratified bootstrap (rliable).

    Each replicate resamples, on every data set independently, its runs with
    replacement (the data sets are the strata, so each keeps its number of
    runs), and evaluates ``statistic`` on the resampled runs.

    Args:
        runs: ``{data set: arrays}``: for a one-variant statistic (e.g. the IQM)
            one array of run scores per data set; for a two-variant statistic
            (e.g. the probability of improvement) a tuple ``(x_runs, y_runs)``
            per data set, each resampled on its own.
        statistic: Called with one ``{data set: resampled array}`` mapping per
            variant, e.g. ``lambda m: iqm(np.concatenate(list(m.values())))``.
        reps: Bootstrap replicates.
        confidence: Two-sided level in ``(0, 1)``.
        random_state: Seed of the resampling.

    Returns:
        ``(point estimate, lower, upper)``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    if not runs:
        raise ValueError("runs must hold at least one data set")
    tasks = list(runs)
    groups = [runs[t] if isinstance(runs[t], tuple) else (runs[t],) for t in tasks]
    n_variants = len(groups[0])
    if any(len(g) != n_variants for g in groups):
        raise ValueError("every data set must give the same number of variants")
    arrays = [[np.asarray(a, dtype=np.float64).reshape(-1) for a in g] for g in groups]

    def evaluate(sample: list[list[np.ndarray]]) -> float:
        return float(statistic(*({t: sample[i][v] for i, t in enumerate(tasks)} for v in range(n_variants))))

    point = evaluate(arrays)
    rng = np.random.default_rng(random_state)
    values = np.empty(reps)
    for r in range(reps):
        values[r] = evaluate([[a[rng.integers(0, len(a), len(a))] for a in g] for g in arrays])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def performance_profile(scores: np.ndarray | Sequence[float], taus: np.ndarray | Sequence[float]) -> np.ndarray:
    """Score distribution: the fraction of runs whose normalised score exceeds each threshold ``tau``.

    Args:
        scores: Normalised run scores of one variant over all data sets.
        taus: Thresholds.

    Returns:
        ``P(score > tau)`` for each ``tau``.

    Shape:
        - scores: ``(n_runs,)``
        - taus: ``(m,)``
        - output: ``(m,)``
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(taus, dtype=np.float64).reshape(-1)
    if len(s) == 0:
        raise ValueError("performance_profile needs at least one score")
    return (s[None, :] > t[:, None]).mean(axis=1)
