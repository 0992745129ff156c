"""Metrics against scikit-learn and by-hand values (binary and multi-class)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from learnact.evaluation import METRICS, compute_metrics, expected_calibration_error, predicted_labels
from learnact.evaluation.metrics import confusion_matrix, roc_curve


@pytest.fixture()
def binary():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.6 * y + 0.4 * rng.random(200) - 0.1, 0.01, 0.99)
    return y, p


@pytest.fixture()
def multiclass():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 150)
    logits = rng.normal(size=(150, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, p


def test_registry_metadata():
    assert list(METRICS) == ["accuracy", "f1", "roc_auc", "log_loss", "brier", "ece", "rmse", "mae", "r2"]
    assert [m.higher_is_better for m in METRICS.values()] == [True, True, True, False, False, False, False, False,
                                                             True]
    assert [m.task for m in METRICS.values()] == ["classification"] * 6 + ["regression"] * 3
    for m in METRICS.values():
        assert format(0.5, m.fmt) and m.label


def test_binary_metrics_match_sklearn(binary):
    y, p = binary
    got = compute_metrics(y, p)
    hard = (p > 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, hard), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, hard), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)


def test_multiclass_metrics_match_sklearn(multiclass):
    y, p = multiclass
    got = compute_metrics(y, p)
    hard = p.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, hard), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, hard, average="macro"), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    # Multi-class Brier by hand: mean over samples of the squared distance to the one-hot label.
    assert got["brier"] == pytest.approx(np.mean(np.sum((p - np.eye(3)[y]) ** 2, axis=1)), abs=1e-12)


def test_binary_threshold_is_strict():
    assert predicted_labels(np.array([0.5, 0.5000001, 0.2])).tolist() == [0, 1, 0]


def test_ece_worked_example():
    # Four samples, 10 equal-width bins of top-label confidence:
    #   p=0.95 (y=1): conf 0.95, correct  -> bin [0.9, 1.0]
    #   p=0.92 (y=0): conf 0.92, wrong    -> bin [0.9, 1.0]
    #   p=0.30 (y=0): conf 0.70, correct  -> bin (0.6, 0.7]
    #   p=0.65 (y=0): conf 0.65, wrong    -> bin (0.6, 0.7]
    # bin (0.9,1]: acc 0.5, conf 0.935 -> 2/4 * 0.435; bin (0.6,0.7]: acc 0.5, conf 0.675 -> 2/4 * 0.175
    y = np.array([1, 0, 0, 0])
    p = np.array([0.95, 0.92, 0.30, 0.65])
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.435 + 0.5 * 0.175, abs=1e-12)


def test_ece_perfectly_calibrated_is_zero():
    y = np.array([1, 1, 1, 1, 0])
    p = np.full(5, 0.8)  # confidence 0.8 in one bin, 4/5 correct
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)


def test_roc_auc_single_class_is_nan():
    assert math.isnan(compute_metrics(np.ones(4, dtype=int), np.array([0.2, 0.6, 0.7, 0.9]))["roc_auc"])


def test_multiclass_auc_skips_a_class_missing_from_the_test_set(multiclass):
    y, p = multiclass
    keep = y != 2  # class 2 has no test sample: its one-vs-rest AUC is undefined
    y2, p2 = y[keep], p[keep]
    by_hand = np.mean([skm.roc_auc_score(y2 == k, p2[:, k]) for k in (0, 1)])
    assert compute_metrics(y2, p2)["roc_auc"] == pytest.approx(by_hand, abs=1e-12)


# The metrics are NumPy re-writes of scikit-learn's: held to them on inputs drawn with ties, classes missing
# from the predictions or from the test set, and constant targets.
_LEVELS = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), _LEVELS), min_size=2, max_size=40))
def test_binary_metrics_equal_sklearns_on_tied_scores(pairs):
    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    got = compute_metrics(y, p)
    hard = (p > 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, hard), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, hard, zero_division=0), abs=1e-12)
    if len(np.unique(y)) == 2:
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    else:
        assert np.isnan(got["roc_auc"])


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.lists(_LEVELS, min_size=k, max_size=k)),
                         min_size=2, max_size=30))))
def test_multiclass_f1_and_auc_equal_sklearns(drawn):
    k, rows = drawn
    y = np.array([a for a, _ in rows])
    p = np.array([b for _, b in rows]) + 1e-3  # no all-zero row
    p = p / p.sum(axis=1, keepdims=True)
    got = compute_metrics(y, p)
    hard = p.argmax(axis=1)
    assert got["f1"] == pytest.approx(skm.f1_score(y, hard, average="macro", zero_division=0), abs=1e-12)
    present = [c for c in range(k) if 0 < np.sum(y == c) < len(y)]
    if present:
        by_class = np.mean([skm.roc_auc_score(y == c, p[:, c]) for c in present])
        assert got["roc_auc"] == pytest.approx(by_class, abs=1e-12)
    else:
        assert np.isnan(got["roc_auc"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([-2.0, 0.0, 1.5, 3.0]), st.floats(-5, 5)), min_size=1, max_size=30),
       st.booleans())
def test_regression_metrics_equal_sklearns(pairs, exact):
    y = np.array([a for a, _ in pairs])
    p = y.copy() if exact else np.array([b for _, b in pairs])
    got = compute_metrics(y, p, "regression")
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)), abs=1e-12)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p), abs=1e-12)
    if len(y) > 1:  # scikit-learn warns and returns NaN on one sample; so does nothing here call it with one
        assert got["r2"] == pytest.approx(skm.r2_score(y, p), abs=1e-12)


# roc_curve and confusion_matrix serve the report's figures (ROC, confusion) without importing scikit-learn in
# the report's processes: held to sklearn.metrics point for point, ties and collinear points included.
@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _LEVELS), min_size=2, max_size=40).filter(
    lambda pairs: len({a for a, _ in pairs}) == 2))
def test_roc_curve_equals_sklearns(pairs):
    from learnact.evaluation import roc_curve

    positive = np.array([a for a, _ in pairs])
    score = np.array([b for _, b in pairs])
    fpr, tpr, thresholds = roc_curve(positive, score)
    want = skm.roc_curve(positive, score)
    np.testing.assert_array_equal(fpr, want[0])
    np.testing.assert_array_equal(tpr, want[1])
    np.testing.assert_array_equal(thresholds, want[2])


def test_roc_curve_worked_example_and_one_class():
    from learnact.evaluation import roc_curve

    # scores 0.9 (pos), 0.8 (neg), 0.8 (pos), 0.1 (neg): thresholds inf, 0.9, 0.8, 0.1
    fpr, tpr, thresholds = roc_curve(np.array([1, 0, 1, 0], bool), np.array([0.9, 0.8, 0.8, 0.1]))
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.8, 0.1])
    with pytest.raises(ValueError, match="positive and negative samples; got 2 positive of 2"):
        roc_curve(np.array([True, True]), np.array([0.2, 0.3]))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=30))))
def test_confusion_matrix_equals_sklearns(drawn):
    from learnact.evaluation import confusion_matrix

    k, pairs = drawn
    y = np.array([a for a, _ in pairs])
    pred = np.array([b for _, b in pairs])
    np.testing.assert_array_equal(confusion_matrix(y, pred, k), skm.confusion_matrix(y, pred, labels=np.arange(k)))


@pytest.mark.parametrize(("call", "expected"), [
    (lambda: compute_metrics(np.array([0, 1, 1]), np.array([0.2, 0.8, 0.6]), task="regresion"),
     "unknown task 'regresion' (did you mean 'regression'?)"),
    (lambda: compute_metrics(np.array([0, 1, 1]), np.array([0.2, 1.7, -0.4])), "prob holds probabilities, in [0, 1]"),
    (lambda: compute_metrics(np.array([0, 1, 1]), np.array([0.2, 0.8])), "y_true has 3, prob has 2"),
    (lambda: roc_curve(np.array([1, 0, 1, 0, 1], bool), np.array([0.9, 0.1])), "positive has 5, score has 2"),
    (lambda: expected_calibration_error(np.array([0, 1]), np.array([0.2, 0.8]), n_bins=0), "n_bins must be"),
    (lambda: confusion_matrix(np.array([0, 1]), np.array([0]), 2), "y_true has 2, y_pred has 1"),
])
def test_metric_helpers_refuse_what_would_give_a_wrong_answer(call, expected):
    """Each had returned quietly: no metrics for a misspelled task, metrics of 'probabilities' outside [0, 1], a
    curve of labels cut to the scores' length, an ECE of 0.0 from no bins."""
    with pytest.raises(ValueError, match=re.escape(expected)):
        call()


def test_load_dataset_refuses_an_unknown_task(tmp_path):
    from learnact.data import load_dataset
    from learnact.exceptions import DataError

    path = tmp_path / "ok.csv"
    path.write_text("a,b,y\n1,2,0.5\n2,3,1.5\n3,4,2.5\n4,5,3.5\n")
    with pytest.raises(DataError, match=re.escape("task must be 'classification' or 'regression', got "
                                                  "task='regresion'")):
        load_dataset(str(path), task="regresion")
