"""Input errors found from the config and the data, before the study folder is created (issue 11).

Before: ``test_size = 0.999``, a class with one member or ``inf`` in a CSV
were reported after ``study.json``, ``study.log`` and ``.lock`` were written,
as scikit-learn's raw message (the validation split's message said
``test_size`` for ``data.val_size``); missing values and text named the
column but not the row; values too large to standardise trained on NaN.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import learnact
from learnact.cli import main
from learnact.data import check_splits, load_dataset, split_dataset
from learnact.data.sources import Dataset
from learnact.data.splits import split_sizes
from learnact.exceptions import DataError

SRC = str(Path(learnact.__file__).resolve().parents[1])


def _frame(n: int = 60, labels: list[str] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["f1", "f2", "f3"])
    frame["label"] = labels if labels is not None else ["a", "b"] * (n // 2)
    return frame


def _config(tmp_path: Path, frame: pd.DataFrame | None = None, **data) -> Path:
    if frame is not None:
        frame.to_csv(tmp_path / "data.csv", index=False)
        data = {"dataset": str(tmp_path / "data.csv"), "target": "label", **data}
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"name": "chk", "seeds": [1, 2], "data": data, "backbone": {"hidden": [4]},
                                "train": {"max_epochs": 2}, "variants": [{"name": "v", "kind": "fixed"}]}))
    return path


def _cli(tmp_path: Path, config: Path, capsys) -> str:
    """`learnact run` in this process: exit code 2, one line on stderr, and no --out folder; returns the line."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["run", "--config", str(config), "--out", str(out), "--quiet", "--no-report", "--threads", "1"])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists(), "the study folder was created before the input error was found"
    return err


def _with(frame: pd.DataFrame, column: str, row: int, value) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize("data, expected", [
    ({"test_size": 0.999}, "data.test_size = 0.999 leaves 0 rows of data set 'breast_cancer' (569 rows, 2 classes) "
                           "for the training part, which needs at least one row per class (2); lower data.test_size"),
    ({"test_size": 0.001}, "data.test_size = 0.001 leaves 1 row of data set 'breast_cancer' (569 rows, 2 classes) "
                           "for the test part"),
    ({"val_size": 0.999}, "data.val_size = 0.999 leaves 0 of the 426 non-test rows of data set 'breast_cancer' "
                          "(569 rows, 2 classes) for the training part"),
    ({"val_size": 0.001}, "data.val_size = 0.001 leaves 1 of the 426 non-test rows"),
], ids=["test-0.999", "test-0.001", "val-0.999", "val-0.001"])
def test_split_sizes_that_leave_too_few_rows_name_the_field(tmp_path, capsys, data, expected):
    assert expected in _cli(tmp_path, _config(tmp_path, dataset="breast_cancer", **data), capsys)


@pytest.mark.parametrize("frame, expected", [
    (_frame(labels=["a", "b"] * 29 + ["a", "c"]),
     "class 'c' (target column 'label') of data set '{csv}' (60 rows, 3 classes) has 1 row, too few to split"),
    (_frame(labels=["a"] * 58 + ["b"] * 2),  # seed-dependent in scikit-learn: 30 of seeds 0-49 fail
     "class 'b' (target column 'label') of data set '{csv}' (60 rows, 2 classes) has 2 rows, too few to split: "
     "with data.test_size = 0.25 the validation split (data.val_size) needs every class to keep at least 2 of the "
     "45 non-test rows, so a class needs at least 3 rows (or lower data.test_size)"),
    (_with(_frame(), "f2", 5, float("inf")),
     "CSV '{csv}' has infinite values in columns ['f2'] (first: column 'f2', data row 6 (line 7 of the file): inf)"),
    (_with(_frame(), "f1", 11, float("nan")),
     "has missing values in columns ['f1'] (first: column 'f1', data row 12 (line 13 of the file): nan)"),
    (_with(_frame(), "label", 3, float("nan")),
     "has missing values in columns ['label'] (first: column 'label', data row 4 (line 5 of the file): nan)"),
    (_with(_frame(), "f3", 9, "oops"),
     "has non-numeric feature columns ['f3'] (first: column 'f3', data row 10 (line 11 of the file): 'oops')"),
    (_with(_with(_frame(), "f2", 0, 1e308), "f2", 1, -1e308),
     "has values too large to standardise in column 'f2' (first: column 'f2', data row 1 (line 2 of the file): "
     "1e+308"),
], ids=["one-member-class", "two-member-class", "inf", "nan", "missing-label", "text", "too-large"])
def test_data_problems_name_the_column_and_row_before_the_folder_exists(tmp_path, capsys, frame, expected):
    err = _cli(tmp_path, _config(tmp_path, frame), capsys)
    assert expected.format(csv=tmp_path / "data.csv") in err


def test_a_target_for_a_built_in_data_set_is_an_error_not_ignored(tmp_path, capsys):
    err = _cli(tmp_path, _config(tmp_path, dataset="wine", target="label"), capsys)
    assert "data.target: names the label column of a CSV data set; the built-in 'wine' has its own labels" in err


def test_the_real_cli_finds_a_data_problem_before_writing(tmp_path):
    config = _config(tmp_path, _with(_frame(labels=["a", "b"] * 29 + ["a", "c"]), "f2", 5, float("-inf")))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "learnact", "run", "--config", str(config), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 2
    assert done.stderr.startswith(f"learnact: error: CSV {str(tmp_path / 'data.csv')!r} has infinite values in "
                                  f"columns ['f2'] (first: column 'f2', data row 6 (line 7 of the file): -inf)")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
    # the same study with the row fixed: now the class with one member
    frame = _frame(labels=["a", "b"] * 29 + ["a", "c"])
    config = _config(tmp_path, frame)
    done = subprocess.run([sys.executable, "-m", "learnact", "run", "--config", str(config), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 2 and "class 'c' (target column 'label')" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_a_study_folder_being_resumed_is_left_untouched_by_an_input_error(tmp_path, capsys):
    good = _config(tmp_path, _frame())
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["run", "--config", str(good), "--out", str(out), "--quiet", "--no-report", "--threads", "1"])
    assert info.value.code in (0, None)
    before = {str(p): p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    _config(tmp_path, _with(_frame(), "f1", 2, float("inf")))  # same file, now with inf
    with pytest.raises(SystemExit) as info:
        main(["run", "--config", str(good), "--out", str(out), "--quiet", "--no-report", "--threads", "1"])
    assert info.value.code == 2 and "infinite values in columns ['f1']" in capsys.readouterr().err
    assert {str(p): p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_constant_columns_do_not_break_scaling(tmp_path):
    frame = _frame()
    frame["f2"] = 7.0  # constant everywhere: scale 1, the column becomes 0
    frame.to_csv(tmp_path / "const.csv", index=False)
    ds = load_dataset(str(tmp_path / "const.csv"))
    check_splits(ds, 0.25, 0.2)
    split = split_dataset(ds, 1)
    assert split.scaler.scale[1] == 1.0
    for X in (split.X_train, split.X_val, split.X_test):
        assert np.isfinite(X).all() and (X[:, 1] == 0).all()


def _toy(counts: list[int]) -> Dataset:
    y = np.repeat(np.arange(len(counts)), counts)
    X = np.random.default_rng(0).normal(size=(len(y), 2))
    return Dataset("toy", X, y, ("x0", "x1"), tuple(f"c{i}" for i in range(len(counts))))


@pytest.mark.parametrize("counts", [[2, 2, 20], [3, 40], [2, 40], [1, 30], [5, 5], [4, 4, 4], [3, 3], [10, 2, 2]])
@pytest.mark.parametrize("test_size, val_size", [(0.25, 0.2), (0.5, 0.5), (0.1, 0.1), (0.8, 0.3)])
def test_check_splits_passes_only_what_scikit_learn_splits_for_every_seed(counts, test_size, val_size):
    """Whatever check_splits lets through splits for 40 seeds; what it refuses for a size reason fails for all."""
    ds = _toy(counts)
    try:
        check_splits(ds, test_size, val_size)
    except DataError as exc:
        refused = str(exc)
    else:
        refused = ""
    outcomes = []
    for seed in range(40):
        try:
            split_dataset(ds, seed, test_size, val_size)
            outcomes.append(True)
        except ValueError:
            outcomes.append(False)
    if not refused:
        assert all(outcomes), f"check_splits passed {counts} at {test_size}/{val_size}, a seed failed"
    elif "leaves" in refused:  # a part too small: independent of the seed
        assert not any(outcomes)
    else:  # a thin class: refused when some seed fails, or (conservatively) when one could
        assert "too few to split" in refused


def test_split_sizes_match_the_split():
    ds = load_dataset("breast_cancer")
    for test_size, val_size in [(0.25, 0.2), (0.1, 0.5), (0.33, 0.01)]:
        split = split_dataset(ds, 3, test_size, val_size)
        assert split_sizes(len(ds.y), test_size, val_size) == (len(split.y_train), len(split.y_val), len(split.y_test))


def test_a_continuous_target_under_the_default_task_names_the_regression_option(tmp_path):
    from console import run_learnact

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame["a"] * 3.7 + rng.normal(size=300)).round(3)
    frame.to_csv(tmp_path / "reg.csv", index=False)
    n = frame["y"].nunique()
    proc = run_learnact("run", "--data", "reg.csv", "--target", "y", "--out", "out", cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"learnact: error: target 'y' of data set 'reg.csv' has {n} distinct numeric values, too "
                           "many to be classes; for a regression task pass --task regression (data.task = "
                           '"regression" in a study file)\n')
    assert not (tmp_path / "out").exists()
    # 150 numeric classes of 12 rows each split for every seed: numeric labels are not refused as such
    numeric = _toy([12] * 150)
    numeric = Dataset("toy", numeric.X, numeric.y, numeric.feature_names, tuple(f"{i / 10}" for i in range(150)), "y")
    check_splits(numeric, 0.25, 0.2)
    text = _toy([1] * 200)  # 200 text classes of one row each: the split's own message
    with pytest.raises(DataError, match="for the test part, which needs at least one row per class"):
        check_splits(text, 0.25, 0.2)
