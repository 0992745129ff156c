"""The ``suite`` preset: what it holds, and that it trains end to end on every one of its data sets (issue 13)."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from console import run_learnact
from learnact.data.sources import DATASETS
from learnact.experiment import list_presets, load_study
from learnact.model.activations.families import list_families

pytest.importorskip("mnist1d")
pytest.importorskip("palmerpenguins")


def test_the_suite_preset_spans_tasks_kinds_and_eight_or_more_data_sets():
    assert "suite" in list_presets()
    study = load_study("suite")
    names = [d.dataset for d in study.datasets]
    assert len(study.datasets) >= 8 and len(set(names)) == len(names)
    datasets = {d.dataset for d in study.datasets}
    assert {"mnist1d", "penguins"} <= datasets
    tasks = {DATASETS[d].task for d in datasets}
    assert tasks == {"classification", "regression"}
    assert any(d.startswith("formula_") for d in datasets) and "diabetes" in datasets
    penguins = next(d for d in study.datasets if d.dataset == "penguins")
    assert penguins.one_hot and penguins.impute  # it has text columns and missing values
    assert len(study.seeds) == 5
    kinds = {v.activation.kind for v in study.variants}
    fixed = {v.activation.activation for v in study.variants if v.activation.kind == "fixed"}
    assert fixed == {"relu", "tanh", "gelu", "silu"}
    gates = {v.activation.gate for v in study.variants if v.activation.kind == "gated"}
    assert gates == {"layer", "input"}  # the paper's headline gated mixtures
    assert len(kinds & set(list_families())) >= 3
    assert study.reference in {v.name for v in study.variants}


@pytest.mark.slow  # each data set loads (tests/data/test_data.py) and a suite trains through the CLI
# (tests/cli/test_suite_cli.py) in CI; this trains the preset's nine
def test_the_suite_preset_trains_every_data_set_through_the_cli(tmp_path: Path):
    """The preset itself, cut to one seed and two epochs, through the console script: every data set loads,
    preprocesses and trains, and the terminal prints the suite summary."""
    raw = tomllib.loads(resources.files("learnact.presets").joinpath("suite.toml").read_text())
    raw["seeds"] = [3]
    raw["train"]["max_epochs"] = 2
    raw["backbone"]["hidden"] = [4]
    (tmp_path / "suite.json").write_text(json.dumps(raw))
    proc = run_learnact("run", "suite.json", "--out", "s", "--no-report", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"x {len(raw['data']['datasets'])} data sets" in proc.stdout and "avg rank" in proc.stdout
    from learnact.evaluation import tidy_results
    from learnact.evaluation.suite import suite_scores

    _, means = suite_scores(tidy_results(tmp_path / "s"))
    assert means.shape == (len(raw["data"]["datasets"]), len(load_study("suite").variants))
    assert means.notna().all().all()
