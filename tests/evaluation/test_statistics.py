"""Seed statistics and paired tests against hand-worked values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from learnact.evaluation import (
    EXACT_WILCOXON_MAX,
    ZERO_SPREAD,
    corrected_resampled_ttest,
    holm_adjust,
    summarize_seeds,
    t_interval,
    wilcoxon_signed_rank,
    win_tie_loss,
)

T_975_DF4 = 2.7764451051977987  # Student t quantile 0.975, 4 degrees of freedom (printed tables: 2.776)


def t4_two_sided_p(t: float) -> float:
    """Closed form of Student's t with 4 degrees of freedom: F(t) = 1/2 + 3/8 x (1 - t^2 / (12 (1 + t^2/4)))
    with x = t / sqrt(1 + t^2/4); the two-sided p-value is 2 (1 - F(|t|))."""
    a = abs(t)
    x = a / math.sqrt(1 + a * a / 4)
    cdf = 0.5 + 3 / 8 * x * (1 - a * a / (12 * (1 + a * a / 4)))
    return 2 * (1 - cdf)


def test_t4_closed_form_is_right():
    # Sanity of the helper on table values: t = 2.776 is the two-sided 5% point, t = 0 gives p = 1.
    assert t4_two_sided_p(T_975_DF4) == pytest.approx(0.05, abs=1e-12)
    assert t4_two_sided_p(0.0) == pytest.approx(1.0)


def test_summarize_seeds_worked_example():
    s = summarize_seeds([1.0, 2.0, 3.0, 4.0, 10.0])
    # mean 4; squared deviations 9+4+1+0+36 = 50; sample variance 50/4 = 12.5
    assert s.n == 5 and s.mean == pytest.approx(4.0)
    assert s.std == pytest.approx(math.sqrt(12.5))
    assert s.sem == pytest.approx(math.sqrt(12.5) / math.sqrt(5))
    half = T_975_DF4 * math.sqrt(12.5) / math.sqrt(5)
    assert (s.ci_low, s.ci_high) == pytest.approx((4.0 - half, 4.0 + half))
    assert (s.median, s.q1, s.q3, s.iqr) == pytest.approx((3.0, 2.0, 4.0, 2.0))
    assert (s.min, s.max) == (1.0, 10.0)


def test_summarize_seeds_drops_nan_and_handles_one_value():
    s = summarize_seeds([0.9, float("nan")])
    assert s.n == 1 and s.mean == 0.9 and math.isnan(s.std) and math.isnan(s.ci_low) and s.iqr == 0.0
    assert summarize_seeds([]).n == 0 and math.isnan(summarize_seeds([]).mean)


def test_t_interval_confidence_is_validated():
    with pytest.raises(ValueError, match="confidence=1.5"):
        t_interval([1.0, 2.0], confidence=1.5)


def test_corrected_ttest_worked_example():
    d = [0.01, 0.02, -0.005, 0.015, 0.01]
    # mean 0.01; deviations 0, .01, -.015, .005, 0 -> sum of squares 3.5e-4; var = 3.5e-4 / 4 = 8.75e-5
    # corrected variance of the mean: (1/5 + 0.25) * 8.75e-5 = 3.9375e-5
    se = math.sqrt(3.9375e-5)
    t = 0.01 / se  # 1.59364...
    res = corrected_resampled_ttest(d, test_train_ratio=0.25)
    assert res.n == 5 and res.df == 4
    assert res.mean_diff == pytest.approx(0.01)
    assert res.std_diff == pytest.approx(math.sqrt(8.75e-5))
    assert res.se == pytest.approx(se)
    assert res.t == pytest.approx(1.5936381457791, rel=1e-10)
    assert res.t == pytest.approx(t)
    assert res.p_value == pytest.approx(t4_two_sided_p(t), abs=1e-12)
    assert res.p_value == pytest.approx(0.18622, abs=5e-5)
    assert (res.ci_low, res.ci_high) == pytest.approx((0.01 - T_975_DF4 * se, 0.01 + T_975_DF4 * se))


def test_zero_ratio_is_the_plain_paired_ttest():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=7), rng.normal(size=7) + 0.3
    res = corrected_resampled_ttest(b - a, test_train_ratio=0.0)
    ref = stats.ttest_rel(b, a)
    assert res.t == pytest.approx(ref.statistic) and res.p_value == pytest.approx(ref.pvalue)


def test_correction_shrinks_t_by_the_variance_factor():
    d = np.array([0.3, 0.1, 0.25, -0.05, 0.2, 0.15])
    plain = corrected_resampled_ttest(d, 0.0)
    corrected = corrected_resampled_ttest(d, 143 / 340)
    assert corrected.t == pytest.approx(plain.t * math.sqrt((1 / 6) / (1 / 6 + 143 / 340)))
    assert corrected.p_value > plain.p_value


@pytest.mark.parametrize("d", [[0.02, -0.01, 0.03, 0.0, 0.05], [-0.1, -0.2, 0.01], [1.0, 2.0, 3.0, 4.0]])
def test_interval_excludes_zero_iff_p_below_alpha(d):
    res = corrected_resampled_ttest(d, 0.42)
    assert (res.ci_low > 0 or res.ci_high < 0) == (res.p_value < 0.05)


def test_corrected_ttest_edge_cases():
    one = corrected_resampled_ttest([0.1], 0.4)
    assert one.n == 1 and math.isnan(one.t) and math.isnan(one.p_value)
    same = corrected_resampled_ttest([0.0, 0.0, 0.0], 0.4)
    assert same.t == 0.0 and same.p_value == 1.0
    shift = corrected_resampled_ttest([0.01, 0.01, 0.01], 0.4)  # no spread: no p-value, no interval (they had been
    assert shift.t == math.inf and math.isnan(shift.p_value)      # p = 0 and [0.01, 0.01]: certainty from 2 seeds)
    assert math.isnan(shift.ci_low) and math.isnan(shift.ci_high)
    # equal differences but for rounding (6/45 on two seeds, from different accuracies): as if exactly equal
    rounded = [0.8666666666666667 - 0.7333333333333333, 0.6888888888888889 - 0.5555555555555556]
    assert rounded[0] != rounded[1] and np.std(rounded, ddof=1) > 0
    noisy = corrected_resampled_ttest(rounded, 0.4)
    assert noisy.t == math.inf and math.isnan(noisy.p_value) and noisy.std_diff == 0.0
    assert noisy.mean_diff == pytest.approx(6 / 45, rel=1e-14)
    # a real spread, however small against the mean, is kept
    small = corrected_resampled_ttest([0.1, 0.1 + 1e-9], 0.4)
    assert 0 < small.std_diff and math.isfinite(small.t) and small.t > 1e6
    with pytest.raises(ValueError, match="test_train_ratio=-0.1"):
        corrected_resampled_ttest([0.1, 0.2], -0.1)


def _signed_rank_sum(d: np.ndarray) -> float:
    """R+ of the non-zero differences (average ranks of |d| for ties): scipy's statistic, from scipy's rankdata."""
    nonzero = d[d != 0]
    return float(stats.rankdata(np.abs(nonzero))[nonzero > 0].sum())


@pytest.mark.parametrize(
    "d",
    [
        [0.01, 0.02, -0.005, 0.015, 0.01],
        [0.3, -0.1, 0.2, 0.4, -0.05, 0.25, 0.1],
        [0.02, 0.0, 0.01, -0.03, 0.0, 0.05],  # zeros are dropped
        [-0.1, -0.2, -0.3, -0.4, -0.5],
    ],
)
def test_wilcoxon_matches_scipy(d):
    # scipy >= 1.13's wilcoxon (an exhaustive permutation test where |d| ties or d has zeros, as in d[1], d[2]);
    # scipy 1.10-1.12 approximated those, so the reference is the permutation test itself, on every release
    d = np.asarray(d)
    stat, p = wilcoxon_signed_rank(d)
    ref = stats.permutation_test((d,), _signed_rank_sum, permutation_type="samples", n_resamples=np.inf)
    assert stat == pytest.approx(float(stats.wilcoxon(d, zero_method="wilcox").statistic))
    assert p == pytest.approx(ref.pvalue)


# differences drawn from a few values, so that zeros and tied |d| (0.01 and -0.01) are common
_TIED = st.lists(st.sampled_from([-0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.015]), min_size=2,
                 max_size=EXACT_WILCOXON_MAX)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 0.5000001, 2.0, 3.0]), min_size=1, max_size=20))
def test_tied_ranks_are_scipys_average_ranks(values):
    # the ranks behind the Wilcoxon test and the ROC-AUC (Mann-Whitney), ties sharing their mean rank
    from learnact.evaluation.statistics import tied_ranks

    a = np.asarray(values)
    np.testing.assert_array_equal(tied_ranks(a), stats.rankdata(a, method="average"))


@settings(max_examples=150, deadline=None)
@given(_TIED)
def test_wilcoxon_with_ties_and_zeros_is_scipys_exhaustive_permutation_test(values):
    # the null distribution of every sign pattern, as scipy's permutation_test computes it (whatever
    # scipy.stats.wilcoxon's own method choice for ties is in the installed release)
    d = np.asarray(values)
    nonzero = d[d != 0]
    stat, p = wilcoxon_signed_rank(d)
    if len(nonzero) == 0:
        assert (stat, p) == (0.0, 1.0)
        return
    ref = stats.permutation_test((d,), _signed_rank_sum, permutation_type="samples", n_resamples=np.inf,
                                 alternative="two-sided")
    r_plus = _signed_rank_sum(d)
    assert stat == pytest.approx(min(r_plus, len(nonzero) * (len(nonzero) + 1) / 2 - r_plus), abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-12, abs=0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False).filter(lambda x: abs(x) > 1e-6), min_size=2,
                max_size=EXACT_WILCOXON_MAX, unique_by=abs))
def test_wilcoxon_without_ties_is_scipys_exact_test(values):
    sizes = np.sort(np.abs(values))
    assume(np.all(np.diff(sizes) > ZERO_SPREAD * sizes[:-1]))  # closer ones are ties but for rounding
    stat, p = wilcoxon_signed_rank(values)
    ref = stats.wilcoxon(values, zero_method="wilcox", method="exact")
    assert stat == pytest.approx(float(ref.statistic), abs=1e-12) and p == pytest.approx(float(ref.pvalue), rel=1e-12)


def test_wilcoxon_worked_example_with_a_tie_and_a_zero():
    # d = (0.01, -0.01, 0.02, 0.03, 0): the zero is dropped; |d| ranks 1.5, 1.5, 3, 4; R+ = 1.5 + 3 + 4 = 8.5,
    # R- = 1.5. Of the 16 sign patterns, R+ >= 8.5 for {all +: 10, (-1.5 one of two): 8.5, 8.5} = 3 -> 3/16;
    # two-sided p = 2 * 3/16 = 0.375.
    assert wilcoxon_signed_rank([0.01, -0.01, 0.02, 0.03, 0.0]) == (1.5, pytest.approx(0.375))


def test_wilcoxon_past_the_exact_limit_is_scipys():
    rng = np.random.default_rng(5)
    d = np.round(rng.normal(0.01, 0.02, size=EXACT_WILCOXON_MAX + 7), 2)  # ties: scipy's normal approximation
    ref = stats.wilcoxon(d, zero_method="wilcox")
    assert wilcoxon_signed_rank(d) == (pytest.approx(float(ref.statistic)), pytest.approx(float(ref.pvalue)))


def test_wilcoxon_smallest_p_with_five_seeds_and_edge_cases():
    # All five differences of one sign: exact two-sided p = 2 / 2^5 = 0.0625.
    assert wilcoxon_signed_rank([1.0, 2.0, 3.0, 4.0, 5.0]) == (0.0, pytest.approx(0.0625))
    assert wilcoxon_signed_rank([0.0, 0.0, 0.0]) == (0.0, 1.0)
    assert all(math.isnan(v) for v in wilcoxon_signed_rank([0.3]))


def test_holm_worked_example():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
    got = holm_adjust([0.01, 0.04, 0.03, 0.005])
    assert got.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_nan():
    assert holm_adjust([0.5, 0.6]).tolist() == [1.0, 1.0]
    got = holm_adjust([0.02, float("nan"), 0.04])  # m = 2: 0.02*2 = 0.04, 0.04*1 -> max 0.04
    assert got[0] == pytest.approx(0.04) and math.isnan(got[1]) and got[2] == pytest.approx(0.04)
    assert holm_adjust([]).size == 0
    with pytest.raises(ValueError, match=r"\[1.5\]"):
        holm_adjust([0.1, 1.5])


def test_win_tie_loss_respects_direction():
    d = [0.1, 0.0, -0.2, 0.3, 1e-15]
    assert win_tie_loss(d, higher_is_better=True) == (2, 2, 1)
    assert win_tie_loss(d, higher_is_better=False) == (1, 2, 2)
    assert win_tie_loss([0.1, float("nan")]) == (1, 0, 0)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_t_quantile_is_scipys_t_ppf(confidence):
    from learnact.evaluation import t_quantile

    for df in [1, 2, 4, 9, 30, 66, 1000]:
        p = (1 + confidence) / 2
        assert t_quantile(p, df) == pytest.approx(float(stats.t.ppf(p, df)), rel=1e-13, abs=0)
    assert t_quantile(0.975, 4) == pytest.approx(T_975_DF4, rel=1e-13)


def test_ranking_and_paired_tests_do_not_import_scipy_stats(tmp_path):
    # the leaderboard path (tidy table -> seed aggregates -> leaderboard) and the report's paired tests on a few
    # seeds run without scipy.stats, which costs 0.3-0.6 s to import; a Wilcoxon test past the exact limit
    # imports it
    import subprocess
    import sys

    code = ("import sys, pandas as pd\n"
            "from learnact.evaluation import leaderboard, seed_aggregates\n"
            "rows = [{'run_id': f'v{v}_s{s}', 'variant': f'v{v}', 'seed': s, 'status': 'finished', "
            "'kind': 'fixed', 'metric': 'accuracy', 'group': 'performance', 'value': 0.9 + 0.01 * s + v}\n"
            "        for v in range(2) for s in range(3)]\n"
            "tidy = pd.DataFrame(rows)\n"
            "agg = seed_aggregates(tidy)\n"
            "board = leaderboard(tidy)\n"
            "assert agg['ci_low'].notna().all() and len(board) == 2\n"
            "print('scipy.stats' in sys.modules)\n"
            "from learnact.evaluation import EXACT_WILCOXON_MAX, corrected_resampled_ttest, wilcoxon_signed_rank\n"
            "assert 0 < corrected_resampled_ttest([0.1, 0.2, 0.4], 0.3).p_value < 1\n"
            "assert wilcoxon_signed_rank([0.1, -0.1, 0.2, 0.0, 0.3])[1] == 0.375\n"
            "print('scipy.stats' in sys.modules)\n"
            "wilcoxon_signed_rank([0.1 * (i + 1) for i in range(EXACT_WILCOXON_MAX + 1)])\n"
            "print('scipy.stats' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]


def test_wilcoxon_ties_differences_equal_but_for_rounding_and_drops_the_tied_zeros():
    # two seeds gain 6/45 each, computed from different accuracies: equal in exact arithmetic, not in floats
    gain, loss = 0.8666666666666667 - 0.7333333333333333, -(0.6888888888888889 - 0.5555555555555556)
    assert gain != -loss
    rounded = [gain, loss, 0.2, 0.3, -0.05]
    exact = [6 / 45, -6 / 45, 0.2, 0.3, -0.05]
    by_perm = stats.permutation_test((np.array(exact),), _signed_rank_sum, permutation_type="samples",
                                     n_resamples=np.inf)
    got = wilcoxon_signed_rank(rounded)
    assert got == wilcoxon_signed_rank(exact)
    assert got[1] == pytest.approx(by_perm.pvalue, rel=1e-12) and got[0] == 3.5  # ranks 1, 2.5, 2.5, 4, 5: R- = 3.5
    # a difference within the tie tolerance is a zero, as win_tie_loss counts it a tie
    assert wilcoxon_signed_rank([1e-13, 0.1, 0.2, -0.05], zero_tol=1e-12) == wilcoxon_signed_rank([0.1, 0.2, -0.05])
    assert win_tie_loss([1e-13, 0.1, 0.2, -0.05]) == (2, 1, 1)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 9).flatmap(lambda k: arrays(np.float64, st.tuples(st.integers(1, 6), st.just(k)),
                                                  elements=st.floats(-1e6, 1e6, allow_nan=False))))
def test_summarize_seed_rows_gives_each_row_what_summarize_seeds_gives_it(matrix):
    # the leaderboard summarises the groups with as many seeds as each other at once: every number is the one
    # the row gets alone, to the last bit
    import dataclasses

    from learnact.evaluation.statistics import summarize_seed_rows

    together = summarize_seed_rows(matrix)
    assert len(together) == len(matrix)
    for row, summary in zip(matrix, together, strict=True):
        alone = dataclasses.astuple(summarize_seeds(row))
        assert all(a == b or (a != a and b != b) for a, b in zip(dataclasses.astuple(summary), alone, strict=True))


def test_summarize_seed_rows_refuses_ragged_or_non_finite_input():
    from learnact.evaluation.statistics import summarize_seed_rows

    with pytest.raises(ValueError, match="finite values of shape"):
        summarize_seed_rows(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="finite values of shape"):
        summarize_seed_rows(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="confidence"):
        summarize_seed_rows(np.ones((1, 3)), confidence=1.5)
