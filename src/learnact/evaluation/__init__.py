"""Evaluation: metrics, gate diagnostics, seed statistics, aggregation."""

from .metrics import METRICS, Metric, compute_metrics, expected_calibration_error, predicted_labels

__all__ = ["METRICS", "Metric", "compute_metrics", "expected_calibration_error", "predicted_labels"]
