"""A multi-class study's report says how F1 and ROC-AUC are averaged over the classes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from learnact.evaluation.metrics import METRICS
from learnact.experiment import run_study, study_from_dict
from learnact.reporting.fig_performance import leaderboard_figure
from learnact.reporting.report import protocol_paragraphs
from learnact.reporting.study_view import MULTICLASS_METRICS, load_study_view


def _view(tmp_path, dataset):
    folder = tmp_path / dataset
    run_study(study_from_dict({"name": "s", "seeds": [1], "data": {"dataset": dataset}, "backbone": {"hidden": [4]},
                               "train": {"max_epochs": 2},
                               "variants": [{"name": "relu", "kind": "fixed", "activation": "relu"}]}), folder)
    return load_study_view(folder)


def test_a_multiclass_report_says_f1_is_macro_and_roc_auc_one_vs_rest(tmp_path):
    # the reports never said how the two were averaged over iris's 3 classes
    view = _view(tmp_path, "iris")
    assert view.multiclass and MULTICLASS_METRICS in protocol_paragraphs(view)
    fig, detail = leaderboard_figure(view)
    plt.close(fig)
    assert MULTICLASS_METRICS in detail
    # and what it says is what the metrics compute: the mean over classes of each one-vs-rest score
    run = view.runs["relu"][0]
    y, p = run.predictions()["y_true"].to_numpy().astype(int), run.probabilities()
    f1 = np.mean([METRICS["f1"].fn((y == k).astype(int), (p.argmax(1) == k).astype(float)) for k in range(3)])
    auc = np.mean([METRICS["roc_auc"].fn((y == k).astype(int), p[:, k]) for k in range(3)])
    assert abs(run.metrics["f1"] - f1) < 1e-9
    assert abs(run.metrics["roc_auc"] - auc) < 1e-9


def test_a_binary_report_does_not(tmp_path):
    view = _view(tmp_path, "breast_cancer")
    assert not view.multiclass and MULTICLASS_METRICS not in " ".join(protocol_paragraphs(view))
