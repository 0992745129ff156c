"""Paired comparisons against a reference: hand-built tables with known answers, and a real study."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from learnact.evaluation import (
    COMPARISON_COLUMNS,
    corrected_resampled_ttest,
    holm_adjust,
    paired_comparisons,
    resolve_reference,
    tidy_results,
)

SEEDS = [1, 7, 21, 42, 99]


def _table(values: dict[str, dict[int, float]], metric="roc_auc", kinds=None, n_train=340, n_test=143):
    rows = []
    for variant, per_seed in values.items():
        for seed, value in per_seed.items():
            rows.append({"run_id": f"{variant}__s{seed}", "variant": variant, "seed": seed,
                         "kind": (kinds or {}).get(variant, "gated"), "n_train": n_train, "n_val": 86,
                         "n_test": n_test, "metric": metric, "group": "performance", "value": value})
    return pd.DataFrame(rows)


REF = {1: 0.990, 7: 0.995, 21: 0.985, 42: 0.992, 99: 0.996}
A = {s: REF[s] + d for s, d in zip(SEEDS, [0.01, 0.02, -0.005, 0.015, 0.01], strict=True)}
B = {s: REF[s] - 0.004 for s in SEEDS}
C = {7: 0.999}  # one shared seed only


@pytest.fixture()
def table():
    return _table({"ref": REF, "a": A, "b": B, "c": C}, kinds={"ref": "fixed"})


def test_columns_and_rows(table):
    out = paired_comparisons(table, "ref", ["roc_auc"])
    assert tuple(out.columns) == COMPARISON_COLUMNS
    assert out["variant"].tolist() == ["a", "b", "c"] and (out["reference"] == "ref").all()
    assert out.attrs["reference"] == "ref"


def test_corrected_ttest_and_interval(table):
    row = paired_comparisons(table, "ref", ["roc_auc"]).set_index("variant").loc["a"]
    ratio = 143 / 340
    # Same worked differences as the statistics test: mean 0.01, var 8.75e-5.
    se = math.sqrt((1 / 5 + ratio) * 8.75e-5)
    assert row["n_shared"] == 5 and row["seeds"] == "1,7,21,42,99" and row["comparable"]
    assert row["mean_diff"] == pytest.approx(0.01) and row["test_train_ratio"] == pytest.approx(ratio)
    assert row["t_stat"] == pytest.approx(0.01 / se)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(0.01 / se, 4))
    half = stats.t.ppf(0.975, 4) * se
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.01 - half, 0.01 + half))
    assert row["mean_variant"] - row["mean_reference"] == pytest.approx(row["mean_diff"])
    assert row["effect_size"] == pytest.approx(0.01 / math.sqrt(8.75e-5))
    assert (row["wins"], row["ties"], row["losses"]) == (4, 0, 1)
    w = stats.wilcoxon([0.01, 0.02, -0.005, 0.015, 0.01])
    assert row["wilcoxon_stat"] == pytest.approx(w.statistic) and row["wilcoxon_p"] == pytest.approx(w.pvalue)


def test_holm_runs_over_the_comparable_variants(table):
    out = paired_comparisons(table, "ref", ["roc_auc"]).set_index("variant")
    raw = out.loc[["a", "b"], "p_value"].to_numpy()
    assert out.loc[["a", "b"], "p_holm"].to_numpy() == pytest.approx(holm_adjust(raw), nan_ok=True)
    assert out.loc[["a", "b"], "wilcoxon_p_holm"].to_numpy() == pytest.approx(
        holm_adjust(out.loc[["a", "b"], "wilcoxon_p"].to_numpy()))
    # b loses by a constant 0.004 on every seed: zero variance, t = -inf and no p-value (it had been p = 0, read
    # as certainty); the Wilcoxon test and 0/0/5 still speak
    assert out.loc["b", "t_stat"] == -math.inf and math.isnan(out.loc["b", "p_value"])
    assert out.loc["b", "status"] == "no spread over seeds: no t-test" and out.loc["b", "wilcoxon_p"] == 0.0625
    assert out.loc["a", "p_holm"] == out.loc["a", "p_value"]  # Holm over the one variant with a p-value
    assert (out.loc["b", "wins"], out.loc["b", "ties"], out.loc["b", "losses"]) == (0, 0, 5)


def test_fewer_than_two_shared_seeds_is_not_comparable(table):
    row = paired_comparisons(table, "ref", ["roc_auc"]).set_index("variant").loc["c"]
    assert not row["comparable"] and row["status"] == "not comparable (1 shared seed; need 2)"
    assert row["n_shared"] == 1 and row["seeds"] == "7"
    for col in ("mean_diff", "ci_low", "ci_high", "t_stat", "p_value", "p_holm", "wilcoxon_p"):
        assert math.isnan(row[col]), col
    assert pd.isna(row["wins"])


def test_nan_values_do_not_count_as_shared():
    tbl = _table({"ref": REF, "a": {1: 0.99, 7: float("nan")}})
    row = paired_comparisons(tbl, "ref", ["roc_auc"]).iloc[0]
    assert row["n_shared"] == 1 and not row["comparable"]


def test_lower_is_better_metric_counts_wins_downwards():
    tbl = _table({"ref": {1: 0.20, 7: 0.30, 21: 0.25}, "a": {1: 0.10, 7: 0.35, 21: 0.15}}, metric="log_loss")
    row = paired_comparisons(tbl, "ref", ["log_loss"]).iloc[0]
    assert (row["wins"], row["ties"], row["losses"]) == (2, 0, 1) and row["higher_is_better"] is False
    assert row["mean_diff"] == pytest.approx((-0.1 + 0.05 - 0.1) / 3)


def test_split_sizes_set_the_correction():
    a = paired_comparisons(_table({"ref": REF, "a": A}, n_train=400, n_test=100), "ref", ["roc_auc"]).iloc[0]
    res = corrected_resampled_ttest(np.array(list(A.values())) - np.array(list(REF.values())), 0.25)
    assert a["test_train_ratio"] == 0.25 and a["p_value"] == pytest.approx(res.p_value)


def test_default_reference_choice(table):
    # No study reference: the best fixed variant by ROC-AUC, even when a gated one is better.
    two_fixed = _table({"f1x": {1: 0.90, 7: 0.91}, "f2x": {1: 0.95, 7: 0.94}, "g": {1: 0.99, 7: 0.99}},
                       kinds={"f1x": "fixed", "f2x": "fixed"})
    assert resolve_reference(two_fixed) == "f2x"
    # No fixed variant at all: the best one overall.
    gated = _table({"g1": {1: 0.90, 7: 0.91}, "g2": {1: 0.95, 7: 0.94}})
    assert resolve_reference(gated) == "g2"
    # The study's reference (tidy.attrs) wins over the default; an explicit one over both.
    table.attrs["reference"] = "b"
    assert resolve_reference(table) == "b" and resolve_reference(table, "a") == "a"
    assert paired_comparisons(table, metrics=["roc_auc"])["reference"].iloc[0] == "b"


def test_the_reference_choice_says_how_it_was_made_with_the_metric_it_used(table):
    """Titles had said "best fixed baseline by ROC-AUC" for a regression study (chosen by R²) and for a study
    with no fixed variant (the best one overall)."""
    from learnact.evaluation.comparison import reference_choice

    two_fixed = _table({"f1x": {1: 0.90, 7: 0.91}, "f2x": {1: 0.95, 7: 0.94}, "g": {1: 0.99, 7: 0.99}},
                       kinds={"f1x": "fixed", "f2x": "fixed"})
    assert reference_choice(two_fixed) == ("f2x", "best fixed baseline by ROC-AUC")
    regression = pd.concat([_table({"f1x": {1: 0.30, 7: 0.31}, "f2x": {1: 0.25, 7: 0.24}}, metric=m,
                                   kinds={"f1x": "fixed", "f2x": "fixed"}) for m in ("r2", "rmse")])
    assert reference_choice(regression) == ("f1x", "best fixed baseline by R²")
    gated = _table({"g1": {1: 0.90, 7: 0.91}, "g2": {1: 0.95, 7: 0.94}})
    assert reference_choice(gated) == ("g2", "best variant by ROC-AUC")
    assert reference_choice(gated, "g1") == ("g1", "given")
    gated.attrs["reference"] = "g1"
    assert reference_choice(gated) == ("g1", "the study's reference")


def test_unknown_names_suggest_the_closest(table):
    with pytest.raises(ValueError, match=r"unknown reference 'rf' \(did you mean 'ref'\?\)"):
        paired_comparisons(table, "rf")
    with pytest.raises(ValueError, match=r"unknown metric 'roc_au' \(did you mean 'roc_auc'\?\)"):
        paired_comparisons(table, "ref", ["roc_au"])
    table.attrs["reference"] = "gone"
    with pytest.raises(ValueError, match="study's reference 'gone' has no finished runs"):
        resolve_reference(table)


def test_on_a_real_study(tiny_study):
    tidy = tidy_results(tiny_study)
    out = paired_comparisons(tidy, metrics=("roc_auc", "accuracy", "gate1_entropy_mean"))
    ref = out["reference"].iloc[0]
    assert ref in ("baseline_tanh", "baseline_relu")
    means = tidy[(tidy["metric"] == "roc_auc") & (tidy["kind"] == "fixed")].groupby("variant")["value"].mean()
    assert ref == means.idxmax()
    assert len(out[out["metric"] == "roc_auc"]) == 5 and out[out["metric"] == "roc_auc"]["comparable"].all()
    # Only gated variants have gate statistics: the fixed one is not comparable on them.
    gate = out[out["metric"] == "gate1_entropy_mean"].set_index("variant")
    assert not gate["comparable"].any() and (gate["n_shared"] == 0).all()
    assert np.allclose(out.loc[out["comparable"], "test_train_ratio"].to_numpy(dtype=float), 143 / 340)


def test_the_leaderboard_sorts_a_regression_study_by_r2_and_refuses_an_unknown_metric():
    """A regression study's leaderboard had fallen back to its first metric, RMSE, while the report and suites rank
    by R² (a variant first by RMSE and second by R² stood first); a misspelled sort_by sorted by ROC-AUC quietly."""
    from learnact.evaluation import leaderboard

    r2 = _table({"a": {1: 0.30, 7: 0.31}, "b": {1: 0.33, 7: 0.32}}, metric="r2")
    rmse = _table({"a": {1: 59.0, 7: 59.5}, "b": {1: 60.0, 7: 60.5}}, metric="rmse")
    board = leaderboard(pd.concat([r2, rmse], ignore_index=True))
    assert board["variant"].tolist() == ["b", "a"]  # best R², though worse RMSE
    with pytest.raises(ValueError, match=r"sort_by: unknown metric 'log_los' \(did you mean 'log_loss'\?\)"):
        leaderboard(_table({"a": {1: 0.9}}), sort_by="log_los")


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"test_train_ratio": float("nan")}, "test_train_ratio must be a finite number >= 0 (or None"),
    ({"test_train_ratio": -0.1}, "test_train_ratio must be a finite number >= 0"),
    ({"tie_tol": -1}, "tie_tol must be a relative tolerance in [0, 1)"),
])
def test_bad_statistics_arguments_name_themselves(table, kwargs, expected):
    """A NaN ratio had been taken for "not given" and reported as missing split sizes; a negative tie_tol was
    accepted, and exact zero differences stopped counting as ties."""
    with pytest.raises(ValueError, match=re.escape(expected)):
        paired_comparisons(table, "ref", ["roc_auc"], **kwargs)


@pytest.mark.parametrize("threshold", [2, float("nan"), True])
def test_a_bad_collapse_threshold_is_the_callers_not_a_run_folders(tiny_study, threshold):
    """tidy_results(collapse_threshold=2) had blamed the first gated run folder and advised rerunning the study."""
    with pytest.raises(ValueError, match=r"collapse_threshold must be in \(0, 1\)") as caught:
        tidy_results(tiny_study, collapse_threshold=threshold)
    assert "rerun" not in str(caught.value)


def test_a_study_folder_where_a_table_belongs_is_named(tiny_study):
    """A path (or a dict for run_study) had failed deep inside: "'PosixPath' object has no attribute 'empty'",
    "string indices must be integers", "'dict' object has no attribute 'runs'"."""
    from learnact.evaluation import leaderboard
    from learnact.experiment import run_study

    with pytest.raises(TypeError, match=r"leaderboard takes the tidy results table .*got PosixPath"):
        leaderboard(tiny_study)
    with pytest.raises(TypeError, match=r"paired_comparisons takes the tidy results table .*got str"):
        paired_comparisons(str(tiny_study))
    with pytest.raises(TypeError, match=r"run_study takes a StudyConfig .*got dict"):
        run_study({"name": "x"}, tiny_study / "nope")
