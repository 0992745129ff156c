"""Regression through every stage: data, training (both engines), metrics, store, statistics, report, predict."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

from console import run_learnact as _learnact
from learnact.data import load_dataset, split_dataset
from learnact.data.sources import FORMULAS
from learnact.evaluation import tidy_results
from learnact.evaluation.metrics import compute_metrics, task_metrics
from learnact.training.objective import targets_tensor, task_loss
from learnact.training.stacked_loss import member_task_loss, task_and_gradient

STUDY = textwrap.dedent("""
    name = "regression"
    seeds = [1, 2]
    reference = "tanh"
    [data]
    datasets = ["diabetes", "formula_exp_sin"]
    [backbone]
    hidden = [16]
    [train]
    max_epochs = 40
    [[variants]]
    name = "tanh"
    kind = "fixed"
    activation = "tanh"
    [[variants]]
    name = "gated"
    kind = "gated"
    candidates = ["relu", "tanh", "sin"]
    [[variants]]
    name = "prelu"
    kind = "prelu"
""")


def test_regression_metrics_equal_scikit_learn_and_have_their_directions():
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=50), rng.normal(size=50)
    m = compute_metrics(y, p, "regression")
    assert list(m) == task_metrics("regression") == ["rmse", "mae", "r2"]
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p)) and m["r2"] == pytest.approx(skm.r2_score(y, p))
    from learnact.evaluation import METRICS

    assert (METRICS["rmse"].higher_is_better, METRICS["mae"].higher_is_better, METRICS["r2"].higher_is_better) == \
        (False, False, True)
    assert all(np.isnan(v) for v in compute_metrics(y, np.full(50, np.nan), "regression").values())


@pytest.mark.parametrize("name", list(FORMULAS))
def test_formula_data_sets_follow_their_formula(name):
    d = load_dataset(f"formula_{name}")
    assert d.task == "regression" and d.n_classes == 0 and d.X.shape == (1000, FORMULAS[name][1])
    np.testing.assert_allclose(d.y, FORMULAS[name][2](d.X))
    assert np.abs(d.X).max() <= 1


def test_targets_are_standardised_on_the_training_part():
    d = load_dataset("diabetes")
    s = split_dataset(d, seed=3)
    assert s.task == "regression" and s.n_outputs == 1
    raw_train = d.y[np.concatenate([s.idx_train, s.idx_val])]  # the first split's training part
    assert s.target_mean == pytest.approx(raw_train.mean()) and s.target_scale == pytest.approx(raw_train.std())
    np.testing.assert_allclose(s.targets(s.y_test), d.y[s.idx_test])


def test_the_losses_are_mean_squared_error_per_model_and_per_member():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 1), torch.randn(6)
    target = targets_tensor(y.numpy(), 0)
    assert target.shape == (6,) and target.dtype == torch.float32
    assert task_loss(logits, target) == pytest.approx(float(((logits[:, 0] - y) ** 2).mean()))
    stacked, ys = torch.randn(3, 6, 1), torch.randn(3, 6)
    per_member = member_task_loss(stacked, ys)
    for k in range(3):
        assert per_member[k] == task_loss(stacked[k], ys[k])  # each member's loss, as one model's
    loss, grad = task_and_gradient(stacked, ys)
    assert torch.equal(loss, per_member)
    np.testing.assert_allclose(grad[..., 0], 2 * (stacked[..., 0] - ys) / 6, rtol=1e-6)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("regression")
    (root / "study.toml").write_text(STUDY)
    proc = _learnact("run", "study.toml", "--out", "study", cwd=root)
    assert proc.returncode == 0, proc.stderr
    (root / "stdout.txt").write_text(proc.stdout)
    return root


def test_a_regression_suite_runs_end_to_end(study: Path):
    board = pd.read_csv(study / "study" / "leaderboard.csv")
    assert {"rmse_mean", "mae_mean", "r2_mean"} <= set(board.columns) and "roc_auc_mean" not in board.columns
    assert (board["n_seeds"] == 2).all() and (board["n_diverged"] == 0).all()
    diabetes = board[board["dataset"] == "diabetes"]
    assert (diabetes["r2_mean"] > 0.2).all()  # a fitted model, not the mean predictor (R2 = 0)
    # leaderboard = the runs' own metrics, recomputed here from their saved predictions
    run = next((study / "study" / "runs").glob("gated__diabetes__s1__*"))
    pred = pd.read_csv(run / "predictions.csv")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(pred["y_true"], pred["y_pred"])))
    assert metrics["r2"] == pytest.approx(skm.r2_score(pred["y_true"], pred["y_pred"]))
    np.testing.assert_allclose(pred["y_true"], load_dataset("diabetes").y[pred["row"]], rtol=1e-12)  # own scale


def test_the_report_draws_predicted_against_true_and_skips_probability_figures(study: Path):
    report = study / "study" / "report"
    sub = (report / "diabetes" / "index.md").read_text()
    assert (report / "diabetes" / "figures" / "regression_fit.png").stat().st_size > 5000
    assert "Mean ROC curves" not in sub and "Confusion" not in sub  # classification figures are not part of it
    table = pd.read_csv(report / "diabetes" / "tables" / "leaderboard.csv")
    assert {"rmse_mean", "r2_mean"} <= set(table.columns)
    comparisons = pd.read_csv(report / "diabetes" / "tables" / "comparisons.csv")
    assert set(comparisons["metric"]) == {"r2", "rmse", "mae"}
    means = pd.read_csv(report / "tables" / "suite_means.csv")
    assert set(means.columns) >= {"diabetes", "formula_exp_sin"}  # the suite ranks by R2 per data set


def test_the_loss_curves_of_a_regression_study_are_labelled_mean_squared_error(study: Path):
    # the axis read "Cross-entropy (nats)" for every study
    from learnact.reporting import drawing
    from learnact.reporting.study_view import load_study_view

    fig, _ = drawing.loss_curves_figure(load_study_view(study / "study", dataset="diabetes"))
    labels = {ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()}
    assert labels == {"Mean squared error (standardised targets, log scale)"}


def test_predict_gives_values_on_the_targets_scale(study: Path, tmp_path: Path):
    run = next((study / "study" / "runs").glob("tanh__diabetes__s2__*"))
    saved = pd.read_csv(run / "predictions.csv")
    d = load_dataset("diabetes")
    rows = pd.DataFrame(d.X[saved["row"]], columns=list(d.feature_names))
    rows.to_csv(tmp_path / "x.csv", index=False)
    proc = _learnact("predict", str(run), str(tmp_path / "x.csv"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    from io import StringIO

    got = pd.read_csv(StringIO(proc.stdout))
    assert list(got.columns) == ["predicted"]
    np.testing.assert_allclose(got["predicted"], saved["y_pred"], rtol=1e-5)


def test_the_vectorised_engine_equals_the_sequential_one_on_regression(tmp_path: Path):
    (tmp_path / "s.toml").write_text(STUDY.replace('datasets = ["diabetes", "formula_exp_sin"]',
                                                   'dataset = "formula_product"'))
    for engine in ("sequential", "vectorized"):
        proc = _learnact("run", "s.toml", "--out", engine, "--engine", engine, "--no-report", "-q", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    a = tidy_results(tmp_path / "sequential").set_index(["variant", "seed", "metric"])["value"]
    b = tidy_results(tmp_path / "vectorized").set_index(["variant", "seed", "metric"])["value"]
    for m in ("rmse", "mae", "r2", "epochs_run"):
        np.testing.assert_allclose(a.xs(m, level="metric"), b.xs(m, level="metric"), rtol=1e-6, err_msg=m)


def test_a_regression_file_needs_numeric_targets(tmp_path: Path):
    frame = pd.DataFrame({"x": np.arange(20.0), "y": ["a"] * 20})
    frame.to_csv(tmp_path / "d.csv", index=False)
    proc = _learnact("run", "--preset", "headline", "--data", "d.csv", "--task", "regression", "--out", "o", "-q",
                     cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "must hold finite numbers for a regression task" in proc.stderr and len(proc.stderr.splitlines()) == 1
