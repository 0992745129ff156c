"""The suite report (``report/`` of a study over several data sets) when variants diverge, and its labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from learnact.reporting.suite_report import build_suite_report


def _tidy(values: dict[str, dict[str, list[float]]], metric: str = "accuracy",
          reference: str | None = None) -> pd.DataFrame:
    """A suite's tidy table: ``{variant: {data set: score per seed}}``, NaN: a diverged run."""
    rows = []
    for v, per in values.items():
        for d, scores in per.items():
            for seed, x in enumerate(scores, 1):
                bad = x != x
                rid = f"{v}__{d}__s{seed}"
                rows.append({"run_id": rid, "dataset": d, "variant": v, "seed": seed, "kind": "fixed",
                             "status": "diverged" if bad else "finished", "metric": metric,
                             "group": "performance", "value": x})
                if metric == "r2":  # a regression table records rmse
                    rows.append({**rows[-1], "metric": "rmse", "value": 1 - x})
    tidy = pd.DataFrame(rows)
    tidy.attrs["reference"] = reference
    return tidy


def _one(label: str, sub: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.md").write_text(label)
    return folder


def _build(tidy: pd.DataFrame, out: Path) -> str:
    build_suite_report(out, tidy, "s", out, pdf=False, build_one=_one, workers=1)
    return (out / "index.md").read_text()


NAN = float("nan")
GOOD = {"tanh": {"d1": [0.8, 0.9], "d2": [0.6, 0.7], "d3": [0.5, 0.5]},
        "relu": {"d1": [0.7, 0.7], "d2": [0.9, 0.8], "d3": [0.6, 0.6]}}


def test_a_variant_that_diverged_everywhere_is_left_out_of_the_ranking_with_a_note(tmp_path: Path):
    # the suite report was not written at all and `learnact run` exited 2 ("needs at least 2 data sets where
    # every variant finished; got 0"), after removing an earlier report's figures and tables
    boom = {"d1": [NAN, NAN], "d2": [NAN, NAN], "d3": [0.4, NAN]}  # all but one data set
    md = _build(_tidy({**GOOD, "boom": boom}), tmp_path)
    assert "Left out of the ranking across data sets: boom (no finished run with a finite score on d1, d2)" in md
    ranked = pd.read_csv(tmp_path / "tables" / "suite_means.csv")
    assert list(ranked["variant"]) == ["relu", "tanh"]
    assert ranked.set_index("variant").loc["tanh", "d1"] == pytest.approx(np.mean([0.8, 0.9]))
    assert (tmp_path / "figures" / "iqm.png").is_file() and (tmp_path / "index.html").is_file()
    listing = pd.read_csv(tmp_path / "tables" / "suite_datasets.csv")
    assert list(listing["dataset"]) == ["d1", "d2", "d3"] and list(listing["report"]) == [
        "d1/index.html", "d2/index.html", "d3/index.html"]


def test_a_left_out_reference_is_named_and_another_compared_with(tmp_path: Path):
    md = _build(_tidy({**GOOD, "boom": {"d1": [NAN], "d2": [NAN], "d3": [NAN]}}, reference="boom"), tmp_path)
    assert "The study's reference boom is among them" in md
    assert "against tanh (best fixed baseline by average rank)" in md or "against relu" in md


def test_a_suite_with_one_variant_left_has_its_report_without_a_ranking(tmp_path: Path):
    md = _build(_tidy({"tanh": GOOD["tanh"], "boom": {"d1": [NAN], "d2": [NAN], "d3": [NAN]}}), tmp_path)
    assert ("No ranking across data sets: a suite comparison needs at least 2 variants with a finished run on "
            "every data set; got 1 (tanh).") in md
    assert not (tmp_path / "tables" / "suite_means.csv").exists()
    listing = pd.read_csv(tmp_path / "tables" / "suite_datasets.csv")
    assert list(listing["best_variant"]) == ["tanh"] * 3
    assert "](d1/index.md)" in md and "Critical-difference diagram" in md and (tmp_path / "report.tex").is_file()


def test_the_suite_report_names_r2_by_its_label(tmp_path: Path):
    # captions said "mean test r2", "equivalence of 0.01 in r2", "best variant (mean r2; ...)"
    md = _build(_tidy(GOOD, "r2"), tmp_path)
    assert "mean test R²" in md and "equivalence of 0.01 in R²" in md and "best variant (mean R²" in md
    assert " r2" not in md and "R2" not in md


def test_the_data_sets_table_carries_each_best_variant_also_where_one_is_left_out(tmp_path: Path):
    # the CSV had only dataset, report; a data set left out of the ranking showed "-" although variants finished
    values = {**GOOD, "big": {"d1": [0.95, 0.95], "d2": [0.1, 0.2], "d3": [NAN, NAN]}}
    md = _build(_tidy(values), tmp_path)
    listing = pd.read_csv(tmp_path / "tables" / "suite_datasets.csv").set_index("dataset")
    assert listing["best_variant"].to_dict() == {"d1": "big", "d2": "relu", "d3": "relu"}
    assert listing["in_ranking"].to_dict() == {"d1": True, "d2": True, "d3": False}
    assert "Left out of the ranking across data sets (a variant finished no run there): d3" in md


def test_a_data_sets_report_links_back_to_the_suite_report():
    # it said "the suite report, one folder up (../index.html)" as plain text
    from learnact.reporting.html import index_html
    from learnact.reporting.index import SUITE_REPORT_PHRASE, index_markdown

    protocol = [f"This data set is one of a suite's: the comparison across its data sets is {SUITE_REPORT_PHRASE}."]
    assert "is [the suite report, one folder up](../index.md)." in index_markdown("t", protocol, [], [])
    assert 'is <a href="../index.html">the suite report, one folder up</a>.' in index_html("t", protocol, [], [])


def test_a_suite_of_both_tasks_names_its_score_with_labels(tmp_path: Path):
    # a mixed suite's captions said "R2 for regression"
    tidy = pd.concat([_tidy({v: {d: s for d, s in per.items() if d != "d3"} for v, per in GOOD.items()}),
                      _tidy({v: {"r1": [0.5, 0.6] if v == "tanh" else [0.4, 0.4], "r2": [0.3, 0.2]}
                             for v in GOOD}, "r2")], ignore_index=True)
    md = _build(tidy, tmp_path)
    assert "mean test score (accuracy; R² for regression)" in md and "R2" not in md
