"""A tiny real study shared by the evaluation tests (few epochs, small widths)."""

from __future__ import annotations

import pytest

TINY = {
    "name": "tiny",
    "seeds": [1, 7, 21],
    "backbone": {"hidden": [16, 8]},
    "train": {"max_epochs": 8, "patience": 3},
    "variants": [
        {"name": "baseline_tanh", "kind": "fixed", "activation": "tanh"},
        {"name": "baseline_relu", "kind": "fixed", "activation": "relu"},
        {"name": "static_T0.7_lam0.01", "kind": "gated", "gate": "layer", "temperature": 0.7,
         "entropy_weight": 0.01},
        {"name": "neuron_T1", "kind": "gated", "gate": "neuron", "temperature": 1.0},
        {"name": "input_T0.7", "kind": "gated", "gate": "input", "gate_source": "network", "temperature": 0.7},
        {"name": "input_layer_T1", "kind": "gated", "gate": "input", "gate_source": "layer", "gate_hidden": 4,
         "candidates": ["relu", "tanh"]},
    ],
}


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """Folder of a finished 6-variant x 3-seed study (no ``reference`` in study.json)."""
    from learnact.experiment import run_study, study_from_dict

    folder = tmp_path_factory.mktemp("tiny") / "study"
    run_study(study_from_dict(TINY), folder)
    return folder
