"""A study in which every run diverged still gets its whole report: tables say so, figures say why they are empty."""

from __future__ import annotations

import pandas as pd

from learnact.experiment import run_study, study_from_dict
from learnact.reporting import build_report
from learnact.reporting.figures import FIGURES, figures_for
from learnact.reporting.study_view import load_study_view


def test_every_run_diverged(tmp_path):
    study = study_from_dict({
        "name": "all_nan", "seeds": [1, 2], "backbone": {"hidden": [4]}, "train": {"max_epochs": 3, "lr": 1e30},
        "variants": [{"name": "fixed_nan", "kind": "fixed", "activation": "tanh"},
                     {"name": "gated_nan", "kind": "gated", "gate": "layer"}],
    })
    folder = tmp_path / "study"
    run_study(study, folder)
    view = load_study_view(folder)
    assert view.variants == [] and view.all_variants == ["fixed_nan", "gated_nan"]
    assert {v: view.n_diverged(v) for v in view.all_variants} == {"fixed_nan": 2, "gated_nan": 2}
    lines: list[str] = []
    report = build_report(folder, progress=lines.append)
    # a progress line per figure of a classification study, as for any such study: the regression-only figure
    # was listed as not drawn too
    wanted = figures_for("classification")
    assert len(wanted) == len(FIGURES) - 1
    assert lines == [f"figure {k}/{len(wanted)}: {spec.name} (not drawn: every run of the study diverged)"
                     for k, spec in enumerate(wanted, 1)]
    index = (report / "index.md").read_text()
    assert "0 finished runs and 4 diverged runs" in index
    assert index.count("every run of the study diverged") == len(wanted)
    # the variants are counted by kind, those whose runs all diverged too ("0 fixed baselines" before)
    assert "2 variants (1 fixed baseline, 1 gated mixture)" in index
    # the figures' heading says why it is empty, in both pages
    assert "## Figures\n\nNo figure was drawn for this study; each one's reason is listed below." in index
    assert "No figure was drawn for this study" in (report / "index.html").read_text()
    board = pd.read_csv(report / "tables" / "leaderboard.csv").set_index("variant")
    assert board["n_seeds"].tolist() == [0, 0] and board["n_diverged"].tolist() == [2, 2]
    comparisons = pd.read_csv(report / "tables" / "comparisons.csv")
    assert not comparisons["comparable"].any() and (comparisons["n_diverged"] == 2).all()
    diag = pd.read_csv(report / "tables" / "gate_diagnostics.csv")
    assert diag["variant"].tolist() == ["gated_nan"] and diag["n_diverged"].tolist() == [2]
    assert "every run diverged (2)" in (report / "tables" / "gate_diagnostics.md").read_text()
