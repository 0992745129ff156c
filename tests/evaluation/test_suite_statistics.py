"""Statistics across data sets, checked against scipy, scikit-posthocs, baycomp and worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from learnact.evaluation.suite_statistics import (
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


def _table(seed: int = 0, n: int = 12, k: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shift = np.linspace(0, 0.08, k)  # variant j is better by j * 0.02 on average
    return pd.DataFrame(0.8 + shift + rng.normal(0, 0.03, (n, k)),
                        index=[f"d{i}" for i in range(n)], columns=[f"v{j}" for j in range(k)])


def test_average_ranks_by_hand_with_ties():
    scores = pd.DataFrame({"a": [0.9, 0.5, 0.7], "b": [0.8, 0.5, 0.9], "c": [0.7, 0.6, 0.8]})
    # row ranks (1 = best): [1,2,3], [2.5,2.5,1], [3,1,2] -> a 6.5/3, b 5.5/3, c 6/3
    r = average_ranks(scores)
    assert r.to_dict() == pytest.approx({"a": 6.5 / 3, "b": 5.5 / 3, "c": 2.0})
    assert list(r.index) == ["b", "c", "a"]
    assert average_ranks(-scores, higher_is_better=False).to_dict() == pytest.approx(r.to_dict())


def test_friedman_matches_scipy_and_the_rank_formula():
    scores = _table()
    res = friedman_test(scores)
    ref = stats.friedmanchisquare(*(scores[c] for c in scores.columns))
    assert res.statistic == pytest.approx(ref.statistic) and res.p_value == pytest.approx(ref.pvalue)
    n, k = scores.shape
    ranks = res.ranks.to_numpy()  # no ties in continuous data: Demšar's formula holds exactly
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks**2) - k * (k + 1) ** 2 / 4)
    assert res.statistic == pytest.approx(chi2)
    f = (n - 1) * chi2 / (n * (k - 1) - chi2)
    assert res.iman_davenport == pytest.approx(f)
    assert res.iman_davenport_p == pytest.approx(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))
    assert res.p_value < 0.05 and res.ranks.index[0] == "v4"  # the planted order is found
    assert friedman_test(scores.sample(frac=1, axis=1, random_state=1)).statistic == pytest.approx(res.statistic)


@pytest.mark.filterwarnings("error")  # scipy's tie correction divided 0 by 0: a RuntimeWarning and NaN
def test_friedman_on_data_sets_that_tie_every_variant_finds_no_difference():
    scores = pd.DataFrame({"a": [0.5, 0.7, 3.0], "b": [0.5, 0.7, 3.0], "c": [0.5, 0.7, 3.0]})
    res = friedman_test(scores, higher_is_better=False)
    assert (res.statistic, res.p_value, res.iman_davenport, res.iman_davenport_p) == (0.0, 1.0, 0.0, 1.0)
    assert res.ranks.to_dict() == {"a": 2.0, "b": 2.0, "c": 2.0}
    # one data set that tells the variants apart is scipy's tie-corrected test again
    scores.loc[3] = [0.1, 0.2, 0.3]
    ref = stats.friedmanchisquare(*(scores[c] for c in scores.columns))
    assert friedman_test(scores).statistic == pytest.approx(ref.statistic) and np.isfinite(ref.statistic)


def test_demsar_worked_example_iman_davenport_and_critical_difference():
    # Demšar (2006), section 3.2.4: four C4.5 variants on 14 data sets, average ranks 3.143, 2.000, 2.893,
    # 1.964 give chi2_F = 9.28 and F_F = 3.69; the Nemenyi critical difference at alpha = 0.05 is 1.25.
    n, k, ranks = 14, 4, np.array([3.143, 2.000, 2.893, 1.964])
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks**2) - k * (k + 1) ** 2 / 4)
    assert chi2 == pytest.approx(9.28, abs=0.01)
    assert (n - 1) * chi2 / (n * (k - 1) - chi2) == pytest.approx(3.69, abs=0.01)
    scores = pd.DataFrame(np.random.default_rng(0).normal(size=(n, k)), columns=list("abcd"))
    assert nemenyi_test(scores).critical_difference == pytest.approx(1.25, abs=0.005)


@pytest.mark.parametrize("k, q", [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850), (7, 2.949),
                                  (8, 3.031), (9, 3.102), (10, 3.164)])
def test_nemenyi_critical_values_match_demsar_table_5a(k, q):
    n = 10
    scores = pd.DataFrame(np.random.default_rng(k).normal(size=(n, k)))
    cd = nemenyi_test(scores, alpha=0.05).critical_difference
    assert cd / np.sqrt(k * (k + 1) / (6 * n)) == pytest.approx(q, abs=0.001)


def test_nemenyi_p_values_match_scikit_posthocs():
    sp = pytest.importorskip("scikit_posthocs")
    scores = _table(seed=3)
    ours = nemenyi_test(scores).p_values
    ref = sp.posthoc_nemenyi_friedman(scores.to_numpy())
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), atol=1e-6)


def test_wilcoxon_holm_matches_scipy_and_scikit_posthocs():
    sp = pytest.importorskip("scikit_posthocs")
    scores = _table(seed=4, n=15, k=4)
    ours = wilcoxon_holm(scores)
    for _, row in ours.iterrows():
        ref = stats.wilcoxon(scores[row["a"]], scores[row["b"]], zero_method="wilcox")
        assert row["p_value"] == pytest.approx(ref.pvalue)
        assert row["mean_diff"] == pytest.approx((scores[row["a"]] - scores[row["b"]]).mean())
    long = scores.melt(var_name="variant", value_name="score")
    ref_holm = sp.posthoc_wilcoxon(long, val_col="score", group_col="variant", p_adjust="holm",
                                   zero_method="wilcox")
    for _, row in ours.iterrows():
        assert row["p_holm"] == pytest.approx(ref_holm.loc[row["a"], row["b"]])


def test_cd_cliques_by_hand():
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 2.2, "d": 3.6})
    cd = 1.0
    cliques = cd_cliques(ranks, lambda x, y: abs(ranks[x] - ranks[y]) > cd)
    assert cliques == [["a", "b"], ["b", "c"]]  # a-c differ (1.2 > 1), c-d differ (1.4), d stands alone
    assert cd_cliques(ranks, lambda x, y: False) == [["a", "b", "c", "d"]]
    assert cd_cliques(ranks, lambda x, y: True) == []


@pytest.mark.parametrize("rope", [0.0, 0.01])
def test_bayesian_signed_rank_matches_baycomp(rope):
    baycomp = pytest.importorskip("baycomp")
    rng = np.random.default_rng(5)
    a = 0.80 + rng.normal(0, 0.02, 20)
    b = a - 0.008 + rng.normal(0, 0.01, 20)
    ours = bayesian_signed_rank(a, b, rope, n_samples=20_000, random_state=7)
    ref = baycomp.SignedRankTest.probs(b, a, rope, nsamples=20_000, random_state=7)  # baycomp: y - x
    if rope > 0:
        assert ours == pytest.approx((ref[2], ref[1], ref[0]), abs=1e-3)
    else:
        assert ours == pytest.approx((ref[1], 0.0, ref[0]), abs=1e-3)
    assert sum(ours) == pytest.approx(1.0)


def test_bayesian_signed_rank_by_hand_limits():
    # Every difference far outside (or inside) the rope: only the prior's pseudo-observation at 0 (weight 0.5
    # against 5 data sets) can pull a posterior sample's largest mass elsewhere, which happens rarely.
    a = np.array([0.9, 0.8, 0.85, 0.95, 0.7])
    assert bayesian_signed_rank(a + 0.1, a, rope=0.01) == pytest.approx((1.0, 0.0, 0.0), abs=0.01)
    assert bayesian_signed_rank(a, a + 0.1, rope=0.01) == pytest.approx((0.0, 0.0, 1.0), abs=0.01)
    assert bayesian_signed_rank(a + 0.001, a, rope=0.01) == pytest.approx((0.0, 1.0, 0.0))
    with pytest.raises(ValueError, match="rope"):
        bayesian_signed_rank(a, a, rope=-1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_iqm_is_scipys_trim_mean_bit_for_bit(values):
    assert iqm(values) == float(stats.trim_mean(np.asarray(values, dtype=np.float64), 0.25))


def test_iqm_by_hand():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm(np.array([[100.0, 1], [2, 3], [4, -50], [5, 6]])) == pytest.approx((2 + 3 + 4 + 5) / 4)
    with pytest.raises(ValueError, match="finite"):
        iqm([1.0, np.nan])


def test_probability_of_improvement_by_hand():
    x = {"t1": [3, 1], "t2": [5.0]}
    y = {"t1": [2, 1], "t2": [5.0, 6.0]}
    # t1: pairs (3>2, 3>1, 1<2, 1=1) -> (1 + 1 + 0 + 0.5) / 4 = 0.625; t2: (5=5, 5<6) -> 0.25
    assert probability_of_improvement(x, y) == pytest.approx((0.625 + 0.25) / 2)
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same data sets"):
        probability_of_improvement({"t1": [1]}, {"t2": [1]})


def test_normalise_scores_per_data_set_and_direction():
    runs = pd.DataFrame({"dataset": ["a", "a", "a", "b", "b"], "acc": [0.5, 0.7, 0.9, 2.0, 4.0]})
    assert normalise_scores(runs, "acc").tolist() == pytest.approx([0, 0.5, 1, 0, 1])
    assert normalise_scores(runs, "acc", higher_is_better=False).tolist() == pytest.approx([1, 0.5, 0, 1, 0])
    assert normalise_scores(runs, "acc", bounds={"a": (0.0, 1.0)}).tolist() == pytest.approx([0.5, 0.7, 0.9, 0, 1])


def test_performance_profile_by_hand():
    assert performance_profile([0.1, 0.5, 0.5, 0.9], [0.0, 0.5, 0.95]).tolist() == [1.0, 0.25, 0.0]


def test_stratified_bootstrap_keeps_each_data_set_size_and_uses_the_statistic():
    runs = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([10.0])}
    seen = []

    def stat(m):
        seen.append({t: len(v) for t, v in m.items()})
        return float(np.mean(m["b"]))

    point, lo, hi = stratified_bootstrap_ci(runs, stat, reps=50)
    assert all(s == {"a": 3, "b": 1} for s in seen) and point == lo == hi == 10.0
    poi = stratified_bootstrap_ci({"t": (np.array([2.0, 3.0]), np.array([1.0, 2.0]))}, probability_of_improvement,
                                  reps=200)
    assert poi[0] == pytest.approx(0.875) and 0 <= poi[1] <= poi[0] <= poi[2] <= 1


def test_stratified_bootstrap_intervals_cover_the_truth_at_about_the_stated_rate():
    # Three data sets, 20 runs each, normal scores around known means; the IQM of a symmetric
    # distribution mixture with equal run counts is estimated; the truth is the mean of the three centres.
    rng = np.random.default_rng(11)
    centres = np.array([0.2, 0.5, 0.8])
    truth = iqm(np.concatenate([c + rng.normal(0, 0.1, 200_000) for c in centres]))  # the population IQM
    trials, hits = 200, 0
    for trial in range(trials):
        runs = {f"t{i}": c + rng.normal(0, 0.1, 20) for i, c in enumerate(centres)}
        _, lo, hi = stratified_bootstrap_ci(runs, lambda m: iqm(np.concatenate(list(m.values()))), reps=300,
                                            confidence=0.9, random_state=trial)
        hits += lo <= truth <= hi
    assert 0.82 <= hits / trials <= 0.97, hits / trials  # nominal 0.90; binomial sd over 200 trials is 0.02
