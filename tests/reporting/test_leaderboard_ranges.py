"""The leaderboard figure keeps each metric's intervals inside its range and says where it cut them."""

from __future__ import annotations

import matplotlib.pyplot as plt

from learnact.experiment import run_study, study_from_dict
from learnact.reporting.fig_performance import leaderboard_figure
from learnact.reporting.study_view import load_study_view


def test_leaderboard_intervals_stay_inside_the_metrics_range(tmp_path):
    # 2 seeds' t intervals drew accuracy from -1.5 to 3.0 and ROC-AUC up to 1.15
    folder = tmp_path / "study"
    run_study(study_from_dict({"name": "s", "seeds": [1, 2], "data": {"dataset": "wine"},
                               "backbone": {"hidden": [4]}, "train": {"max_epochs": 3},
                               "variants": [{"name": "relu", "kind": "fixed", "activation": "relu"},
                                            {"name": "tanh", "kind": "fixed", "activation": "tanh"}]}), folder)
    view = load_study_view(folder)
    agg = view.aggregates
    wide = agg[(agg["metric"].isin(["accuracy", "f1", "roc_auc"])) & ((agg["ci_low"] < 0) | (agg["ci_high"] > 1))]
    assert len(wide), "the study should have an interval beyond [0, 1] for this test"
    fig, detail = leaderboard_figure(view)
    try:
        for ax in fig.axes:
            for coll in ax.collections:  # the error bars' segments
                for seg in getattr(coll, "get_segments", list)():
                    assert all(-1e-9 <= x <= 1 + 1e-9 for x, _ in seg), seg
            low, high = ax.get_xlim()
            assert low > -0.2 and high < 1.2, (low, high)
    finally:
        plt.close(fig)
    assert "Intervals clipped to each metric's range (" in detail and "to [0, 1]" in detail
