"""The gate-diagnostics table: gated variants only, a suite's data set from its own runs, and reasons when absent."""

from __future__ import annotations

import numpy as np
import pytest

from learnact.evaluation import tidy_results
from learnact.experiment import run_study, study_from_dict
from learnact.reporting.fig_cases import case_studies_figure
from learnact.reporting.fig_gates import gate_weights_figure
from learnact.reporting.shapes import shape_panels
from learnact.reporting.study_view import NothingToShow, load_study_view
from learnact.reporting.tables import diagnostics_summary_table


def _study(tmp_path, variants, **data):
    folder = tmp_path / "study"
    run_study(study_from_dict({"name": "s", "seeds": [1, 2], "data": data or {"dataset": "iris"},
                               "backbone": {"hidden": [4]}, "train": {"max_epochs": 2}, "variants": variants}),
              folder)
    return folder


def test_each_data_set_of_a_suite_has_the_gate_diagnostics_of_its_own_runs(tmp_path):
    # every report/<data set>/tables/gate_diagnostics.md was pooled over the suite (n_seeds 4 of 2 per data set)
    folder = _study(tmp_path, [{"name": "relu", "kind": "fixed", "activation": "relu"},
                               {"name": "gated", "kind": "gated", "candidates": ["relu", "tanh", "sigmoid"]}],
                    datasets=["iris", "wine"])
    tidy = tidy_results(folder)
    for d in ("iris", "wine"):
        table = diagnostics_summary_table(load_study_view(folder, d)).data.set_index("variant")
        mine = tidy[(tidy["dataset"] == d) & (tidy["variant"] == "gated")]
        entropy = mine.loc[mine["metric"] == "gate1_entropy_mean", "value"].to_numpy(dtype=float)
        assert table.loc["gated", "n_seeds"] == len(entropy) == 2
        assert table.loc["gated", "entropy_mean_mean"] == pytest.approx(entropy.mean())
        assert table.loc["gated", "entropy_mean_std"] == pytest.approx(entropy.std(ddof=1))


def test_a_study_with_learnable_families_but_no_gate_has_no_gate_diagnostics_table(tmp_path):
    # it had an empty table (header only, "above nan", a 1-byte CSV)
    folder = _study(tmp_path, [{"name": "tanh", "kind": "fixed", "activation": "tanh"},
                               {"name": "family_prelu", "kind": "prelu"}])
    with pytest.raises(NothingToShow, match="^the study has no gated variant$"):
        diagnostics_summary_table(load_study_view(folder))


def test_variants_whose_every_run_diverged_are_named_by_kind(tmp_path):
    # the spline family was a row of the gate diagnostics ("layer" gate); the figures said the study had no gated
    # variant, and the case studies that its gates were static
    folder = _study(tmp_path, [{"name": "tanh", "kind": "fixed", "activation": "tanh"},
                               {"name": "gated_boom", "kind": "gated", "candidates": ["relu", "tanh"], "lr": 1e30},
                               {"name": "spline_boom", "kind": "spline", "lr": 1e30}])
    view = load_study_view(folder)
    assert view.variants == ["tanh"]
    table = diagnostics_summary_table(view)
    assert table.data["variant"].tolist() == ["gated_boom"] and "above 0.9 everywhere" in table.caption
    assert np.isnan(table.data["layer"].iloc[0])
    gated = "every run of the gated variant gated_boom diverged"
    for draw in (gate_weights_figure, case_studies_figure):
        with pytest.raises(NothingToShow, match=f"^{gated}$"):
            draw(view)
    with pytest.raises(NothingToShow, match="^every run of the gated variant gated_boom and the learnable family "
                                            "spline_boom diverged$"):
        shape_panels(view)
