"""A candidate registered only in the Python session that trained a study: its runs are fine, and say so."""

from __future__ import annotations

import pytest
import torch

import learnact
from learnact import store
from learnact.exceptions import RunStoreError
from learnact.experiment import run_study, study_from_dict


def test_a_run_of_a_session_only_candidate_is_fine_and_says_how_to_read_it(tmp_path):
    """`report` had called such runs corrupt and advised moving them out and retraining them."""
    learnact.register_candidate("swish3", lambda x: x * torch.sigmoid(3 * x))
    study = study_from_dict({"name": "sr", "seeds": [0], "data": {"dataset": "iris"}, "backbone": {"hidden": [4]},
                             "train": {"max_epochs": 2},
                             "variants": [{"name": "g", "kind": "gated", "candidates": ["relu", "swish3"]}]})
    run_study(study, tmp_path / "s")
    folder = store.run_dir(tmp_path / "s", study.runs()[0])
    assert store.read_run_config(folder).activation.candidates == ("relu", "swish3")
    from learnact import names
    from learnact.model.activations import candidates

    del candidates._REGISTRY["swish3"]  # a later process, without the script's registration (the conftest
    names._candidates.remove("swish3")  # restores the registries after the test)
    with pytest.raises(RunStoreError) as caught:
        store.read_run_config(folder)
    text = str(caught.value)
    assert "unknown activation 'swish3': the run folder is fine" in text and "corrupt" not in text
    assert "register it again before reading the study" in text
