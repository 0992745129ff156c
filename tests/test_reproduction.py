"""The paper's headline numbers, reproduced by the reference trainer."""

import pytest

from learnact.evaluation import leaderboard, tidy_results
from learnact.experiment import load_study, run_study

PUBLISHED = {  # shared/reference/published_leaderboard.csv
    "baseline_tanh": (0.9734, 0.0059, 0.9788, 0.0048, 0.9973, 0.0019),
    "adaptive_entropy_T0.7_lam0.01": (0.9706, 0.0077, 0.9766, 0.0061, 0.9965, 0.0026),
    "adaptive_input_gate_T0.7": (0.965, 0.0086, 0.9722, 0.0068, 0.9962, 0.0024),
}


@pytest.fixture(scope="module")
def headline(tmp_path_factory):
    """The headline preset trained by the reference trainer, through run folders to the leaderboard."""
    folder = tmp_path_factory.mktemp("headline")
    run_study(load_study("headline"), folder, engine="sequential")
    return leaderboard(tidy_results(folder)).set_index("variant")


def test_headline_preset_is_the_protocol():
    study = load_study("headline")
    assert study.seeds == (1, 7, 21, 42, 99)
    assert [v.name for v in study.variants] == list(PUBLISHED)
    assert len(load_study("paper").runs()) == 75


def test_baseline_tanh_reproduces_published_row_to_four_decimals(headline):
    row = headline.loc["baseline_tanh"]
    got = [round(row[k], 4) for k in ("accuracy_mean", "accuracy_std", "f1_mean", "f1_std",
                                      "roc_auc_mean", "roc_auc_std")]
    assert got == list(PUBLISHED["baseline_tanh"])
    assert row["params_mean"] == 4097


@pytest.mark.parametrize("variant", ["adaptive_entropy_T0.7_lam0.01", "adaptive_input_gate_T0.7"])
def test_learnable_headline_variants_within_one_std(headline, variant):
    row = headline.loc[variant]
    acc_m, acc_s, f1_m, f1_s, auc_m, auc_s = PUBLISHED[variant]
    assert abs(row["accuracy_mean"] - acc_m) <= acc_s
    assert abs(row["f1_mean"] - f1_m) <= f1_s
    assert abs(row["roc_auc_mean"] - auc_m) <= auc_s
    assert row["params_mean"] == (4103 if "entropy" in variant else 5191)
