"""Resuming a study whose CSV changed: a run id holds the file's path, not its content, so `learnact run` into the
study refuses, before training anything, a file that is not the one the finished runs were trained on (edited, or
a relative path naming another file from another working folder). Every test runs the real console script."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from console import run_learnact as _learnact


def _study_file(folder: Path, seeds: list[int]) -> Path:
    path = folder / "st.toml"
    path.write_text(textwrap.dedent(f"""
        name = "ed"
        seeds = {seeds}
        [data]
        dataset = "data.csv"
        [backbone]
        hidden = [4]
        [train]
        max_epochs = 2
        [[variants]]
        name = "relu"
        kind = "fixed"
        activation = "relu"
    """))
    return path


def _write_data(path: Path, n_rows: int = 60, seed: int = 0) -> None:
    r = np.random.default_rng(seed)
    frame = pd.DataFrame(r.normal(size=(n_rows, 3)), columns=list("abc"))
    frame.assign(label=np.array(["cat", "dog", "bird"])[r.integers(0, 3, n_rows)]).to_csv(path, index=False)


def _run(cwd: Path, config: Path, out: Path, *extra: str):
    return _learnact("run", "--config", config, "--out", out, "-q", "--no-report", *extra, cwd=cwd)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a study folder with its bytes (the lock file, rewritten by every session, aside)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def test_an_edited_data_file_is_refused_before_training_and_the_restored_one_resumes(tmp_path: Path):
    data = tmp_path / "data.csv"
    _write_data(data)
    original = data.read_bytes()
    study = tmp_path / "S"
    first = _run(tmp_path, _study_file(tmp_path, [1, 2]), study)
    assert first.returncode == 0, first.stderr
    for run in sorted((study / "runs").iterdir()):  # each run records the content it was trained on
        recorded = json.loads((run / "preprocessing.json").read_text())["data_file"]
        assert recorded == {"path": str(data), "size": len(original), "sha256": hashlib.sha256(original).hexdigest()}

    frame = pd.read_csv(data).iloc[:30]  # the reporter's edit: half the rows, one column changed
    frame["a"] = 1
    frame.to_csv(data, index=False)
    config = _study_file(tmp_path, [1, 2, 3])
    before = _snapshot(study)
    err = _one_line_error(_run(tmp_path, config, study))
    assert "data file 'data.csv'" in err and str(data) in err
    assert "changed since 2 finished runs of study folder" in err
    assert f"{len(original)} bytes, sha256 {hashlib.sha256(original).hexdigest()[:12]} then" in err
    assert "restore the file those runs used" in err and "--out NEW_FOLDER" in err
    assert _snapshot(study) == before  # study.json still plans seeds 1-2, nothing trained, nothing logged

    data.write_bytes(original)  # restored: the study resumes, training only seed 3
    resumed = _run(tmp_path, config, study)
    assert resumed.returncode == 0, resumed.stderr
    assert "(1 trained, 2 already done)" in resumed.stdout
    assert json.loads((study / "study.json").read_text())["seeds"] == [1, 2, 3]


def test_a_relative_path_naming_another_file_from_another_working_folder_is_refused(tmp_path: Path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    _write_data(home / "data.csv")
    study = tmp_path / "S"
    assert _run(home, _study_file(home, [1]), study).returncode == 0
    config = _study_file(tmp_path, [1, 2])  # `learnact run` from elsewhere, where data.csv is another file
    _write_data(elsewhere / "data.csv", seed=1)
    before = _snapshot(study)
    err = _one_line_error(_run(elsewhere, config, study))
    assert f"names {str(elsewhere / 'data.csv')!r}" in err and f"not the {str(home / 'data.csv')!r}" in err
    assert "1 finished run of study folder" in err and "run from the folder those runs ran in" in err
    assert _snapshot(study) == before

    (elsewhere / "data.csv").write_bytes((home / "data.csv").read_bytes())  # the same content: nothing to refuse
    resumed = _run(elsewhere, config, study)
    assert resumed.returncode == 0, resumed.stderr
    assert "(1 trained, 1 already done)" in resumed.stdout


def test_force_retrains_every_run_on_the_edited_file_and_records_it(tmp_path: Path):
    data = tmp_path / "data.csv"
    _write_data(data)
    config = _study_file(tmp_path, [1])
    study = tmp_path / "S"
    assert _run(tmp_path, config, study).returncode == 0
    _write_data(data, n_rows=45, seed=3)
    forced = _run(tmp_path, config, study, "--force")
    assert forced.returncode == 0, forced.stderr
    [run] = (study / "runs").iterdir()
    recorded = json.loads((run / "preprocessing.json").read_text())["data_file"]
    assert recorded["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert _run(tmp_path, config, study).returncode == 0  # and the study resumes on it
