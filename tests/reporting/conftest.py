"""A tiny real study for the report tests: fixed, static gates with T and lambda sweeps, neuron and input gates,
a layer gate whose temperature follows a schedule, and two learnable families (a per-unit PReLU and the per-unit
spline).

Variant names deliberately hide the swept values, so the tests show that sweeps
are found from the variants' settings and not from their names.
"""

from __future__ import annotations

import shutil

import pytest

TINY = {
    "name": "tiny_report",
    "seeds": [1, 2],
    "backbone": {"hidden": [8, 4]},
    "train": {"max_epochs": 4, "patience": 2},
    "variants": [
        {"name": "fixed_tanh", "kind": "fixed", "activation": "tanh"},
        {"name": "static_cold", "kind": "gated", "gate": "layer", "temperature": 0.5},
        {"name": "static_warm", "kind": "gated", "gate": "layer", "temperature": 1.0},
        {"name": "reg_none", "kind": "gated", "gate": "layer", "temperature": 0.7},
        {"name": "reg_strong", "kind": "gated", "gate": "layer", "temperature": 0.7, "entropy_weight": 0.01},
        {"name": "per_unit", "kind": "gated", "gate": "neuron", "temperature": 0.7, "entropy_weight": 0.05},
        {"name": "input_gate", "kind": "gated", "gate": "input", "gate_source": "network", "gate_hidden": 4},
        {"name": "annealed", "kind": "gated", "gate": "layer", "temperature": 2.0,
         "temperature_schedule": "exponential", "temperature_end": 0.5},
        {"name": "prelu_unit", "kind": "prelu", "params": {"granularity": "unit"}},
        {"name": "spline_fam", "kind": "spline"},
    ],
}
FAMILIES = ("prelu_unit", "spline_fam")


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """Folder of the finished tiny study (10 variants x 2 seeds, 4 epochs)."""
    from learnact.experiment import run_study, study_from_dict

    folder = tmp_path_factory.mktemp("report") / "study"
    run_study(study_from_dict(TINY), folder)
    return folder


@pytest.fixture(scope="session")
def tiny_report(tiny_study):
    """The report folder of the tiny study, built once (without PDF)."""
    from learnact.reporting import build_report

    return build_report(tiny_study)


@pytest.fixture()
def fixed_only_study(tiny_study, tmp_path):
    """A study folder holding only the fixed baseline's run folders (no study.json)."""
    folder = tmp_path / "fixed_only"
    for run in (tiny_study / "runs").iterdir():
        if run.name.startswith("fixed_"):
            shutil.copytree(run, folder / "runs" / run.name)
    return folder


@pytest.fixture()
def families_no_gates_study(tiny_study, tmp_path):
    """A study folder with the fixed baseline and the learnable families only: no gated variant."""
    folder = tmp_path / "families_only"
    for run in (tiny_study / "runs").iterdir():
        if run.name.startswith(("fixed_", *(f"{v}__" for v in FAMILIES))):
            shutil.copytree(run, folder / "runs" / run.name)
    return folder
