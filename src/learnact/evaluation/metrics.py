"""Metrics: classification metrics on predicted probabilities, regression metrics on predicted values.

Each metric is a small function with metadata (:class:`Metric`): name,
whether higher is better, and a display format. Binary tasks take the
probability of the positive class, shape ``(n,)``; multi-class tasks take
``(n, n_classes)`` probabilities and use macro / one-vs-rest forms.

They are written in NumPy, with scikit-learn's definitions (tests compare
each with ``sklearn.metrics`` on random and tied inputs): scikit-learn's
functions validate their input at about 5 ms a call, which made scoring a
1,005-run study's runs take longer than training them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .statistics import tied_ranks

__all__ = [
    "Metric",
    "METRICS",
    "task_metrics",
    "table_task",
    "HEADLINE_METRICS",
    "PRIMARY_METRIC",
    "class_probabilities",
    "compute_metrics",
    "confusion_matrix",
    "expected_calibration_error",
    "predicted_labels",
    "roc_curve",
]


@dataclass(frozen=True)
class Metric:
    """A metric and how to read it.

    Attributes:
        name: Column name in results tables.
        label: Human-readable name for figures and tables.
        higher_is_better: Direction of improvement.
        fmt: Python format spec for display (``".4f"``).
        fn: ``(y_true, prob) -> float`` (regression: ``(y_true, y_pred) -> float``).
        task: ``"classification"`` or ``"regression"``: the runs it scores.
    """

    name: str
    label: str
    higher_is_better: bool
    fmt: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    task: str = "classification"


def predicted_labels(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Hard labels: ``prob > threshold`` (binary, ``(n,)``) or arg-max (``(n, k)``)."""
    prob = np.asarray(prob)
    if prob.ndim == 1:
        return (prob > threshold).astype(np.int64)
    return prob.argmax(axis=1).astype(np.int64)


def class_probabilities(prob: np.ndarray) -> np.ndarray:
    """Class-probability matrix: ``[1 - p, p]`` columns for binary ``(n,)`` input, else as given.

    Shape:
        - prob: ``(n,)`` positive-class probability or ``(n, k)``
        - output: ``(n, 2)`` or ``(n, k)``, float64
    """
    prob = np.asarray(prob, dtype=np.float64)
    return np.stack([1 - prob, prob], axis=1) if prob.ndim == 1 else prob


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(predicted_labels(p) == y))


def _f1_of(y: np.ndarray, hard: np.ndarray, label: int) -> float:
    """F1 of one class as the positive one; 0 when it has no true and no predicted sample."""
    tp = np.count_nonzero((hard == label) & (y == label))
    denominator = np.count_nonzero(hard == label) + np.count_nonzero(y == label)
    return 2.0 * tp / denominator if denominator else 0.0


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    """Binary F1 of class 1, or the macro average over the labels seen in ``y`` or predicted (scikit-learn's)."""
    hard = predicted_labels(p)
    if np.asarray(p).ndim == 1:
        return float(_f1_of(y, hard, 1))
    return float(np.mean([_f1_of(y, hard, int(k)) for k in np.union1d(y, hard)]))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC from ranks (Mann-Whitney U), ties at their mean rank; ``positive`` must hold both classes."""
    ranks = tied_ranks(score)
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(score) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Binary ROC-AUC, or the macro average of one-vs-rest AUCs (multi-class).

    A class with no positive (or no negative) test sample has no AUC and is
    left out of the average; NaN when no class has one.
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        return _binary_auc(y == 1, p) if len(np.unique(y)) == 2 else float("nan")
    aucs = [_binary_auc(y == k, p[:, k]) for k in range(p.shape[1]) if 0 < np.sum(y == k) < len(y)]
    return float(np.mean(aucs)) if aucs else float("nan")


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    P = np.clip(class_probabilities(p), 1e-15, 1 - 1e-15)
    P = P / P.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(P[np.arange(len(y)), np.asarray(y)])))


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    P = class_probabilities(p)
    if np.asarray(p).ndim == 1:
        return float(np.mean((np.asarray(p, dtype=np.float64) - y) ** 2))
    onehot = np.eye(P.shape[1])[np.asarray(y)]
    return float(np.mean(np.sum((P - onehot) ** 2, axis=1)))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    """Coefficient of determination; for constant ``y``, 1 when the fit is exact, else 0 (scikit-learn's)."""
    residual = float(np.sum((y - p) ** 2))
    total = float(np.sum((y - np.mean(y)) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, as ``sklearn.metrics.roc_curve`` gives them.

    Scores are sorted in decreasing order (ties kept together); each distinct
    score is a threshold. Points on a straight line between their neighbours
    are dropped (scikit-learn's ``drop_intermediate=True``: the curve and its
    area are the same), and the curve starts at ``(0, 0)`` with threshold
    ``inf``.

    Args:
        positive: Whether each sample belongs to the positive class; both classes must occur.
        score: Higher means more likely positive.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(m,)``, fpr and tpr increasing from 0 to 1.

    Shape:
        - positive, score: ``(n,)``
    """
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    _same_length(positive=positive, score=score)
    if positive.all() or not positive.any():
        raise ValueError(f"an ROC curve needs positive and negative samples; got {int(positive.sum())} positive "
                         f"of {positive.size}")
    order = np.argsort(score, kind="mergesort")[::-1]
    score, positive = score[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]  # last position of each distinct score
    tps = np.cumsum(positive)[last].astype(np.float64)
    fps = 1.0 + last - tps
    thresholds = score[last]
    if fps.size > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thresholds]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of true class ``i`` predicted as ``j`` (``sklearn.metrics.confusion_matrix`` with ``labels=range(k)``).

    Labels outside ``[0, n_classes)`` are not counted.

    Shape:
        - y_true, y_pred: ``(n,)`` integer labels; output: ``(n_classes, n_classes)``, int64
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    _same_length(y_true=y_true, y_pred=y_pred)
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a whole number >= 1, got n_classes={n_classes!r}")
    inside = (y_true >= 0) & (y_true < n_classes) & (y_pred >= 0) & (y_pred < n_classes)
    cells = y_true[inside] * n_classes + y_pred[inside]
    return np.bincount(cells, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE with equal-width confidence bins: ``sum_b |B|/n * |acc(B) - conf(B)|``.

    Confidence is the probability of the predicted class (top-label calibration).
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a whole number >= 1, got n_bins={n_bins!r}")  # 0 bins had given 0.0
    P = class_probabilities(p)
    _same_length(y=np.asarray(y), p=P)
    conf = P.max(axis=1)
    correct = (P.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "Accuracy", True, ".4f", _accuracy),
        Metric("f1", "F1", True, ".4f", _f1),
        Metric("roc_auc", "ROC-AUC", True, ".4f", _roc_auc),
        Metric("log_loss", "Log loss", False, ".4f", _log_loss),
        Metric("brier", "Brier score", False, ".4f", _brier),
        Metric("ece", "ECE", False, ".4f", expected_calibration_error),
        Metric("rmse", "RMSE", False, ".4f", lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))), "regression"),
        Metric("mae", "MAE", False, ".4f", lambda y, p: float(np.mean(np.abs(y - p))), "regression"),
        Metric("r2", "R²", True, ".4f", lambda y, p: _r2(y, p), "regression"),
    )
}


HEADLINE_METRICS = {"classification": ("roc_auc", "accuracy", "f1"), "regression": ("r2", "rmse", "mae")}
"""The metrics tables, figures and comparisons show first, by task (the paper's for classification)."""

PRIMARY_METRIC = {"classification": "accuracy", "regression": "r2"}
"""The one score per data set a suite ranks variants by (both higher-is-better)."""


def table_task(table: object) -> str:
    """``"regression"`` when a tidy table (``metric`` column) or a leaderboard (``rmse_mean``) holds regression
    metrics, else ``"classification"``."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        return "classification"
    if "metric" in table.columns:
        return "regression" if (table["metric"].astype(str) == "rmse").any() else "classification"
    return "regression" if "rmse_mean" in table.columns or "rmse" in table.columns else "classification"


TASKS = ("classification", "regression")
"""The tasks a study or a metric is for."""


def task_metrics(task: str = "classification") -> list[str]:
    """Names of the metrics of :data:`METRICS` that score ``task``'s runs, in order.

    Raises:
        ValueError: ``task`` is not one of :data:`TASKS` (a typo had given no metrics at all).
    """
    if task not in TASKS:
        from .._checks import did_you_mean

        raise ValueError(f"unknown task {task!r}{did_you_mean(str(task), list(TASKS))}; tasks: {', '.join(TASKS)}")
    return [name for name, m in METRICS.items() if m.task == task]


def _same_length(**arrays: np.ndarray) -> None:
    """Raise ``ValueError`` naming the arrays unless they all have the same length (first axis)."""
    lengths = {name: len(a) if np.ndim(a) else 1 for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"one value per sample in each array: {shown}")


def compute_metrics(y_true: np.ndarray, prob: np.ndarray, task: str = "classification") -> dict[str, float]:
    """Every registered metric of the task.

    Args:
        y_true: Integer labels (regression: target values), shape ``(n,)``.
        prob: Positive-class probability ``(n,)`` or class probabilities ``(n, k)``
            (regression: predicted values ``(n,)``, on the targets' scale).
        task: ``"classification"`` or ``"regression"``.

    Returns:
        ``{metric name: value}`` in :data:`METRICS` order; all NaN when any
        prediction is not finite (a diverged run).
    """
    names = task_metrics(task)
    _same_length(y_true=np.asarray(y_true), prob=np.asarray(prob))
    if not np.all(np.isfinite(prob)):
        return {name: float("nan") for name in names}
    if task == "classification" and (np.min(prob) < 0 or np.max(prob) > 1):
        raise ValueError(f"prob holds probabilities, in [0, 1]; got values from {float(np.min(prob)):g} to "
                         f"{float(np.max(prob)):g} (pass probabilities, not logits or scores)")
    y = np.asarray(y_true, dtype=np.float64) if task == "regression" else np.asarray(y_true).astype(np.int64)
    return {name: METRICS[name].fn(y, prob) for name in names}
