"""The runner records each CSV's fingerprint with its runs and checks it on resume: runs recorded before it (no
fingerprint) still resume, a run in superseded/ that a study would move back is checked too, and built-in data
sets record none."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from experiment_helpers import tiny_raw

from learnact import store
from learnact.exceptions import DataError
from learnact.experiment.grid import study_from_dict
from learnact.experiment.runner import run_study


def _csv(path, n_rows: int = 48, seed: int = 0) -> None:
    r = np.random.default_rng(seed)
    frame = pd.DataFrame(r.normal(size=(n_rows, 2)), columns=["a", "b"])
    frame.assign(label=np.array(["x", "y"])[r.integers(0, 2, n_rows)]).to_csv(path, index=False)


def _study(dataset: str, seeds: list[int]):
    raw = tiny_raw()
    return study_from_dict({**raw, "seeds": seeds, "data": {"dataset": dataset}, "variants": raw["variants"][:1]})


def _preprocessing(folder, run) -> dict:
    return json.loads((store.run_dir(folder, run) / "preprocessing.json").read_text())


def test_runs_recorded_without_a_fingerprint_resume_unchecked(tmp_path, reseal):
    data = tmp_path / "data.csv"
    _csv(data)
    folder = tmp_path / "study"
    first = _study(str(data), [0])
    run_study(first, folder)
    [run] = first.runs()
    run_folder = store.run_dir(folder, run)
    pre = _preprocessing(folder, run)
    assert pre["data_file"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    del pre["data_file"]  # as an earlier learnact wrote it, sealed
    (run_folder / "preprocessing.json").write_text(json.dumps(pre))
    reseal(run_folder)
    _csv(data, seed=1)  # cannot be told apart: such runs are kept, not refused nor called corrupt
    result = run_study(_study(str(data), [0, 1]), folder)
    assert (result.n_trained, result.n_skipped) == (1, 1)


def test_a_superseded_run_the_study_would_move_back_is_checked(tmp_path):
    data = tmp_path / "data.csv"
    _csv(data)
    folder = tmp_path / "study"
    run_study(_study(str(data), [0]), folder)
    _csv(data, seed=1)
    moved = run_study(_study(str(data), [1]), folder)  # seed 0 goes to superseded/; seed 1 trains on the edit
    assert len(moved.superseded) == 1
    with pytest.raises(DataError, match=r"changed since 1 finished run of study folder .* were trained on it"):
        run_study(_study(str(data), [0, 1]), folder)  # seed 0, from superseded/, was trained on the old file
    assert (folder / "superseded" / moved.superseded[0]).is_dir()  # left where it was
    assert json.loads((folder / "study.json").read_text())["seeds"] == [1]


def test_a_built_in_data_set_records_no_fingerprint(tmp_path):
    study = _study("iris", [0])
    run_study(study, tmp_path / "study")
    assert "data_file" not in _preprocessing(tmp_path / "study", study.runs()[0])
