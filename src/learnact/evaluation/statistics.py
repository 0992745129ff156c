"""Statistics across seeds: summaries, paired tests, multiple-comparison correction.

Every function takes plain arrays (one value per seed) and returns numbers,
so each can be checked against a worked example. The paired tests treat the
per-seed differences ``d_j = x_variant(seed j) - x_reference(seed j)``; the
seeds change the data split as well as the initialisation, so the runs are
repeated random train/test splits and the corrected resampled t-test of
Nadeau and Bengio (2003) applies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SeedSummary",
    "PairedTest",
    "summarize_seeds",
    "summarize_seed_rows",
    "t_interval",
    "t_quantile",
    "corrected_resampled_ttest",
    "wilcoxon_signed_rank",
    "EXACT_WILCOXON_MAX",
    "ZERO_SPREAD",
    "tied_ranks",
    "holm_adjust",
    "win_tie_loss",
]


def _finite(values: np.ndarray | list[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    return arr[np.isfinite(arr)]


@functools.lru_cache(maxsize=256)
def t_quantile(probability: float, df: int) -> float:
    """Student's t quantile ``t_{probability, df}`` (scipy's ``stdtrit``, which ``stats.t.ppf`` evaluates).

    Cached: a leaderboard asks for the same few (confidence, n) pairs hundreds
    of times. scipy is imported here, not with this module, so reading and
    ranking results does not pay for importing ``scipy.stats``.
    """
    from scipy import special

    return float(special.stdtrit(df, probability))


def _check_confidence(confidence: float) -> None:
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got confidence={confidence!r}")


@dataclass(frozen=True)
class SeedSummary:
    """Summary of one quantity over seeds (non-finite values are dropped).

    Attributes:
        n: Number of finite values.
        mean, std: Mean and sample standard deviation (``ddof=1``; NaN if ``n < 2``).
        sem: Standard error of the mean, ``std / sqrt(n)``.
        ci_low, ci_high: Two-sided t confidence interval of the mean (NaN if ``n < 2``).
        median, q1, q3, iqr: Median, quartiles (linear interpolation) and ``q3 - q1``.
        min, max: Extremes.
    """

    n: int
    mean: float
    std: float
    sem: float
    ci_low: float
    ci_high: float
    median: float
    q1: float
    q3: float
    iqr: float
    min: float
    max: float


def t_interval(values: np.ndarray | list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t confidence interval of the mean.

    ``mean -/+ t_{(1+confidence)/2, n-1} * s / sqrt(n)`` with the sample std ``s``.

    Args:
        values: One value per seed; non-finite values are dropped.
        confidence: Coverage in (0, 1).

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than two values.

    Shape:
        - values: ``(k,)``
    """
    _check_confidence(confidence)
    x = _finite(values)
    if len(x) < 2:
        return float("nan"), float("nan")
    half = t_quantile((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def summarize_seeds(values: np.ndarray | list[float], confidence: float = 0.95) -> SeedSummary:
    """n, mean, sample std, t interval, median and IQR of per-seed values.

    Args:
        values: One value per seed; non-finite values are dropped.
        confidence: Coverage of the interval.

    Shape:
        - values: ``(k,)``
    """
    x = _finite(values)
    if len(x) == 0:
        _check_confidence(confidence)
        nan = float("nan")
        return SeedSummary(0, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    return summarize_seed_rows(x[None, :], confidence)[0]


def summarize_seed_rows(values: np.ndarray, confidence: float = 0.95) -> list[SeedSummary]:
    """:func:`summarize_seeds` of each row of ``values``, computed for all rows at once.

    Each row's numbers are those :func:`summarize_seeds` gives it to the last
    bit (numpy reduces each row as it reduces one array); a leaderboard of
    hundreds of (variant, quantity) groups summarised one by one spent most
    of its time in numpy's per-call overhead.

    Args:
        values: One row per group, one finite value per seed (every row the same number of seeds, at least one).
        confidence: Coverage of the intervals.

    Shape:
        - values: ``(groups, k)``, ``k >= 1``
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1 or not np.isfinite(x).all():
        raise ValueError(f"need finite values of shape (groups, seeds >= 1), got shape {x.shape}")
    n = x.shape[1]
    mean = x.mean(axis=1)
    q1, med, q3 = np.percentile(x, [25, 50, 75], axis=1)
    low, high, lo, hi = x.min(axis=1), x.max(axis=1), mean, mean
    nan = np.full(len(x), np.nan)
    std = sem = nan
    if n > 1:
        std = x.std(axis=1, ddof=1)
        half = t_quantile((1 + confidence) / 2, n - 1) * std / np.sqrt(n)
        lo, hi, sem = mean - half, mean + half, std / np.sqrt(n)
    else:
        lo = hi = nan
    return [SeedSummary(n=n, mean=float(mean[g]), std=float(std[g]), sem=float(sem[g]), ci_low=float(lo[g]),
                        ci_high=float(hi[g]), median=float(med[g]), q1=float(q1[g]), q3=float(q3[g]),
                        iqr=float(q3[g] - q1[g]), min=float(low[g]), max=float(high[g])) for g in range(len(x))]


@dataclass(frozen=True)
class PairedTest:
    """Corrected resampled t-test on paired per-seed differences.

    Attributes:
        n: Number of paired differences.
        mean_diff: Mean difference ``mean(d)``.
        std_diff: Sample standard deviation of the differences.
        se: Corrected standard error ``sqrt((1/n + n_test/n_train) * std_diff**2)``.
        t: ``mean_diff / se``.
        df: Degrees of freedom ``n - 1``.
        p_value: Two-sided p-value from Student's t with ``df`` degrees of freedom.
        ci_low, ci_high: Confidence interval ``mean_diff -/+ t_crit * se`` (the same
            corrected variance, so the interval excludes 0 exactly when
            ``p_value < 1 - confidence``).
    """

    n: int
    mean_diff: float
    std_diff: float
    se: float
    t: float
    df: int
    p_value: float
    ci_low: float
    ci_high: float


ZERO_SPREAD = 1e-12
"""Spread of paired differences, relative to their mean, that :func:`corrected_resampled_ttest` counts as zero.

Differences that are equal in exact arithmetic differ in their last bits in
floating point (two seeds' accuracies 0.8667 - 0.7333 and 0.6889 - 0.5556 on
a 45-sample test set are both 6/45), and their standard deviation is then
about 1e-17 instead of 0: the t statistic came out near 1e15 instead of the
infinity of equal differences. A true spread that small against the mean
would give a p-value of 0 to double precision all the same."""


def corrected_resampled_ttest(
    diffs: np.ndarray | list[float], test_train_ratio: float, confidence: float = 0.95
) -> PairedTest:
    """Nadeau and Bengio's corrected resampled t-test.

    Repeated random splits share most of their training data, so the per-split
    differences are positively correlated and the plain paired t-test is far
    too liberal. The correction inflates the variance of the mean:

        t = mean(d) / sqrt((1/n + n_test/n_train) * var(d)),   df = n - 1.

    Args:
        diffs: Per-seed differences ``x_variant - x_reference``; non-finite
            values are dropped.
        test_train_ratio: ``n_test / n_train`` of one split (``>= 0``; 0 gives
            the plain paired t-test).
        confidence: Coverage of the interval.

    Returns:
        The test; every field NaN when fewer than two differences remain. With
        zero variance, ``t`` is 0 (p = 1) when the mean is 0, else ``+-inf``
        with the p-value and the interval NaN (the test cannot measure a
        spread it does not see: every seed's difference is the same); a spread
        of at most :data:`ZERO_SPREAD` times the mean's size (rounding) counts
        as zero.

    Shape:
        - diffs: ``(k,)``
    """
    _check_confidence(confidence)
    if not isinstance(test_train_ratio, (int, float)) or not test_train_ratio >= 0 \
            or not np.isfinite(test_train_ratio):
        raise ValueError(f"test_train_ratio must be a finite number >= 0, got test_train_ratio={test_train_ratio!r}")
    d = _finite(diffs)
    n = len(d)
    nan = float("nan")
    if n < 2:
        return PairedTest(n, float(d.mean()) if n else nan, nan, nan, nan, max(n - 1, 0), nan, nan, nan)
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd <= ZERO_SPREAD * abs(mean):  # differences equal but for rounding (6/45 twice, from other accuracies)
        sd = 0.0
    se = float(np.sqrt((1.0 / n + test_train_ratio) * sd**2))
    if se > 0:
        t = mean / se
    else:
        t = 0.0 if mean == 0 else float(np.sign(mean) * np.inf)
    from scipy import special  # stats.t.sf(|t|, df) is special.stdtr(df, -|t|); scipy.stats costs 0.3-0.6 s to import

    if se == 0 and mean != 0:  # no spread to measure: neither a p-value nor an interval (p = 0 and a zero-width
        # interval had read as certainty, from two seeds that each lost one test row)
        return PairedTest(n, mean, sd, se, float(t), n - 1, nan, nan, nan)
    p = float(2 * special.stdtr(n - 1, -abs(t)))
    half = float(t_quantile((1 + confidence) / 2, n - 1) * se)
    return PairedTest(n, mean, sd, se, float(t), n - 1, p, mean - half, mean + half)


EXACT_WILCOXON_MAX = 13
"""Most non-zero differences for which :func:`wilcoxon_signed_rank` enumerates every sign pattern (``2**13``)."""


def wilcoxon_signed_rank(diffs: np.ndarray | list[float], zero_tol: float = 0.0) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired differences.

    Zero differences are dropped (``zero_method="wilcox"``), tied absolute
    differences share their average rank. Up to :data:`EXACT_WILCOXON_MAX`
    non-zero differences, the p-value is exact: the signed-rank sum ``R+`` is
    compared with its value under every one of the ``2**m`` sign patterns (the
    null distribution, ties included), ``p = min(1, 2 min(P(R+ <= r), P(R+ >= r)))``
    as scipy's ``permutation_test`` computes it (and, without ties, as
    ``scipy.stats.wilcoxon(method="exact")``); with more, ``scipy.stats.wilcoxon``
    decides. Enumerated here rather than left to ``scipy.stats.wilcoxon``:
    scipy's choice for tied differences changed between releases (a normal
    approximation before 1.13, this enumeration since), and importing
    ``scipy.stats`` took longer than the report's whole comparison table.
    With five seeds the smallest possible two-sided p-value is 0.0625.

    Differences that are equal but for floating-point rounding (within
    :data:`ZERO_SPREAD` of each other, relative) are tied, as they would be
    in exact arithmetic: two seeds' accuracy gains of 6/45, one computed as
    0.8667 - 0.7333 and one as 0.6889 - 0.5556, share a rank.

    Args:
        diffs: Per-seed differences; non-finite values are dropped.
        zero_tol: Differences with ``|d| <= zero_tol`` count as zero (dropped), as
            :func:`win_tie_loss` counts them as ties with the same ``tol``.

    Returns:
        ``(statistic, p_value)``: the smaller of the signed-rank sums and its
        p-value; ``(nan, nan)`` with fewer than two differences, and
        ``(0.0, 1.0)`` when every difference is zero (no evidence either way).

    Shape:
        - diffs: ``(k,)``
    """
    d = _finite(diffs)
    if len(d) < 2:
        return float("nan"), float("nan")
    keep = np.abs(d) > zero_tol
    nonzero = d[keep]
    if len(nonzero) == 0:
        return 0.0, 1.0
    size = _rounding_ties(np.abs(nonzero))
    if len(nonzero) > EXACT_WILCOXON_MAX:
        from scipy import stats

        tied = np.zeros_like(d)  # the zeros stay: scipy's choice of method depends on them (1.10: no exact test)
        tied[keep] = np.sign(nonzero) * size
        res = stats.wilcoxon(tied, zero_method="wilcox", alternative="two-sided")
        return float(res.statistic), float(res.pvalue)
    ranks = tied_ranks(size)
    r_plus = float(ranks[nonzero > 0].sum())
    statistic = min(r_plus, float(ranks.sum()) - r_plus)
    m = len(nonzero)
    signs = (np.arange(2**m)[:, None] >> np.arange(m)) & 1  # every pattern of positive differences
    null = signs @ ranks
    gamma = abs(100 * np.finfo(np.float64).eps * r_plus)  # scipy's allowance for rounding in the sums
    less = np.count_nonzero(null <= r_plus + gamma) / 2**m
    greater = np.count_nonzero(null >= r_plus - gamma) / 2**m
    return statistic, float(min(1.0, 2 * min(less, greater)))


def _rounding_ties(values: np.ndarray) -> np.ndarray:
    """``values`` with each run of near-equal ones (each within :data:`ZERO_SPREAD` of the run's first, relative)
    set to that first value, in sorted order. Shape: ``(n,)`` -> ``(n,)``."""
    order = np.argsort(values, kind="mergesort")
    out = values.astype(np.float64)
    base = None
    for i in order:
        if base is None or out[i] - base > ZERO_SPREAD * abs(base):
            base = out[i]
        out[i] = base
    return out


def tied_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks ``1..n`` of ``values``, ties sharing their mean rank (``scipy.stats.rankdata(method="average")``).

    Shape:
        - values: ``(n,)``; output: ``(n,)``
    """
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[first, len(values)])
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)  # 1-based ranks averaged over each tie
    return ranks


def holm_adjust(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values.

    Sorted ascending, the i-th smallest of ``m`` p-values (``i = 1..m``)
    becomes ``max_{j <= i} min(1, (m - j + 1) * p_(j))``. NaN entries (tests
    that could not be run) stay NaN and do not count towards ``m``.

    Args:
        p_values: Raw p-values in any order.

    Returns:
        Adjusted p-values in the input order.

    Shape:
        - p_values: ``(m,)``
        - output: ``(m,)``
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    bad = p[np.isfinite(p) & ((p < 0) | (p > 1))]
    if len(bad):
        raise ValueError(f"p-values must lie in [0, 1], got {bad.tolist()}")
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def win_tie_loss(
    diffs: np.ndarray | list[float], higher_is_better: bool | None = True, tol: float = 1e-12
) -> tuple[int, int, int]:
    """Count seeds where the variant beats, ties or loses to the reference.

    Args:
        diffs: Per-seed differences ``x_variant - x_reference``; non-finite dropped.
        higher_is_better: Direction of the metric; ``None`` counts "higher"
            as a win (for quantities without a better direction).
        tol: Differences with ``|d| <= tol`` are ties.

    Returns:
        ``(wins, ties, losses)``.

    Shape:
        - diffs: ``(k,)``
    """
    d = _finite(diffs)
    if higher_is_better is False:
        d = -d
    ties = int(np.sum(np.abs(d) <= tol))
    wins = int(np.sum(d > tol))
    return wins, ties, len(d) - wins - ties
