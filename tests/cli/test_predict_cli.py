import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import learnact
from learnact import store
from learnact.cli.app import app
from learnact.cli.errors import run_cli
from learnact.experiment import run_study, study_from_dict

SRC = str(Path(learnact.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s") / "study"
    study = study_from_dict({"name": "t", "seeds": [1], "train": {"max_epochs": 5},
                             "variants": [{"name": "g", "kind": "gated", "gate": "input", "temperature": 0.7}]})
    run_study(study, folder)
    return store.finished_runs(folder)[0]


@pytest.fixture()
def run_copy(tiny_study, tmp_path):
    """A copy of the finished run, safe to edit (in a study folder of its own)."""
    folder = tmp_path / "study" / "runs" / tiny_study.name
    shutil.copytree(tiny_study, folder)
    return folder


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "learnact", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def _predict(capsys, *args):
    """`learnact predict ...` in this process (the console script's code path without its start-up)."""
    rc = run_cli(app, ["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(rc, err, *needles):
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("learnact: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_predict_reproduces_saved_test_predictions(tiny_study, tmp_path):
    out = tmp_path / "pred.csv"
    proc = _cli("predict", str(tiny_study), "breast_cancer", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(out)
    saved = store.read_predictions(tiny_study)
    # float32 forwards of 569 rows and of the 143 test rows: the matrix products may block (and round) the
    # rows differently, a few float32 units of the logit; a wrong model or preprocessing is off by far more
    np.testing.assert_allclose(pred["prob_benign"].to_numpy()[saved["row"]], saved["prob"], rtol=2e-5, atol=1e-6)
    assert set(pred["predicted"]) <= {"malignant", "benign"}
    assert [p.name for p in tmp_path.iterdir()] == ["pred.csv"]  # written through a temporary file, none left


def test_predict_bad_inputs_are_one_line_errors(tiny_study, tmp_path):
    text_csv = tmp_path / "text.csv"
    pd.DataFrame({"a": ["x", "y"]}).to_csv(text_csv, index=False)
    proc = _cli("predict", str(tiny_study), str(text_csv), cwd=tmp_path)
    assert proc.returncode == 2 and "lacks feature columns" in proc.stderr and "Traceback" not in proc.stderr

    broken = tmp_path / "broken"
    shutil.copytree(tiny_study, broken)
    (broken / "weights.safetensors").write_bytes(b"not a checkpoint")
    proc = _cli("predict", str(broken), "breast_cancer", cwd=tmp_path)
    assert proc.returncode == 2 and "weights.safetensors does not match its manifest" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr

    proc = _cli("predict", str(tmp_path / "nope"), "breast_cancer", cwd=tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_a_header_without_rows_and_a_semicolon_file_name_the_problem(tiny_study, capsys, tmp_path):
    # a header only read as "non-numeric feature columns"; a ';'-separated file as columns "the run does not know"
    from sklearn.datasets import load_breast_cancer

    names = load_breast_cancer().feature_names
    header = tmp_path / "header.csv"
    header.write_text(",".join(names) + "\n")
    rc, _, err = _predict(capsys, tiny_study, header)
    _one_line_error(rc, err, "has a header but no data rows; add one row per sample to predict")
    semi = tmp_path / "semi.csv"
    _breast_cancer_csv(semi, lambda frame: frame)
    semi.write_text(semi.read_text().replace(",", ";"))
    rc, _, err = _predict(capsys, tiny_study, semi)
    _one_line_error(rc, err, "its header looks separated by ';'; save it with commas")


def test_weights_with_one_flipped_byte_are_refused(run_copy, tmp_path):
    data = bytearray((run_copy / "weights.safetensors").read_bytes())
    data[len(data) - 7] ^= 0x10  # one bit of one weight: still a valid checkpoint, silently different
    (run_copy / "weights.safetensors").write_bytes(bytes(data))
    proc = _cli("predict", str(run_copy), "breast_cancer", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{run_copy / 'weights.safetensors'} does not match its manifest (edited or corrupt)" in proc.stderr
    assert "learnact run --out" in proc.stderr


def _edit_weights(folder, edit):
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "weights.safetensors"))
    edit(state)
    save_file(state, str(folder / "weights.safetensors"))


def _edit_json(folder, name, edit):
    doc = json.loads((folder / name).read_text())
    edit(doc)
    (folder / name).write_text(json.dumps(doc))


def _set_scale(value):
    def edit(pre):
        pre["scaler"]["scale"][0] = value
    return edit


@pytest.mark.parametrize("edit, needles", [
    (lambda f: _edit_weights(f, lambda s: s["head.weight"].__setitem__((0, 0), float("nan"))),
     ["weights.safetensors: tensor 'head.weight' holds NaN or infinite values"]),
    (lambda f: _edit_json(f, "preprocessing.json", _set_scale(0.0)),
     ["the scale of feature 'mean radius' is 0.0 (must be finite and > 0)", "preprocessing.json"]),
    (lambda f: _edit_json(f, "preprocessing.json", _set_scale(-2.0)), ["scale of feature 'mean radius' is -2.0"]),
    (lambda f: _edit_json(f, "preprocessing.json", _set_scale(float("inf"))), ["scale of feature 'mean radius' is inf"]),
    (lambda f: _edit_json(f, "preprocessing.json", lambda p: p.update(class_names=["benign"])),
     ["1 class names ['benign'] for n_classes = 2"]),
    (lambda f: _edit_json(f, "preprocessing.json", lambda p: p.update(class_names=["a", "b", "c"], n_classes=3)),
     ["weights in", "do not fit the run's config"]),
])
def test_unusable_values_in_a_sealed_run_are_refused(run_copy, capsys, reseal, edit, needles):
    # Sealed again after the edit, so these are the value checks, not the manifest.
    edit(run_copy)
    reseal(run_copy)
    rc, _, err = _predict(capsys, run_copy, "breast_cancer")
    _one_line_error(rc, err, *needles)


def test_edited_class_names_are_refused_not_an_index_error(run_copy, capsys):
    _edit_json(run_copy, "preprocessing.json", lambda p: p.update(class_names=["benign"]))
    rc, _, err = _predict(capsys, run_copy, "breast_cancer")
    _one_line_error(rc, err, "preprocessing.json does not match its manifest")


def _breast_cancer_csv(path, transform):
    from learnact.data import load_dataset

    ds = load_dataset("breast_cancer")
    frame = transform(pd.DataFrame(ds.X, columns=list(ds.feature_names)))
    frame.to_csv(path, index=False)
    return path


def test_renamed_and_swapped_feature_columns_are_refused_by_name(tiny_study, capsys, tmp_path):
    renamed = _breast_cancer_csv(tmp_path / "renamed.csv", lambda f: f.rename(columns={"mean radius": "radius_mm"}))
    rc, _, err = _predict(capsys, tiny_study, renamed)
    _one_line_error(rc, err, "lacks feature columns ['mean radius']", "does not know ['radius_mm'] (renamed?)")

    def swap(f):
        return f.rename(columns={"mean radius": "mean area", "mean area": "mean radius"})

    swapped = _breast_cancer_csv(tmp_path / "swapped.csv", swap)
    rc, _, err = _predict(capsys, tiny_study, swapped)
    _one_line_error(rc, err, "input columns 'mean radius' and 'mean area' look swapped")

    reordered = _breast_cancer_csv(tmp_path / "reordered.csv", lambda f: f[list(f.columns[::-1])])
    rc, out, err = _predict(capsys, tiny_study, reordered)  # another order, right names: fine
    assert rc == 0, err
    rc, same, _ = _predict(capsys, tiny_study, "breast_cancer")
    assert out == same


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be created")
def test_an_unwritable_out_file_says_rerun_not_resume(tiny_study, tmp_path):
    # the fix of a failed write said "rerun the same command to resume", which fits a study, not one CSV file
    from console import run_learnact

    proc = run_learnact("predict", tiny_study, "breast_cancer", "--out", "/proc/x.csv", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("learnact: error: cannot write '/proc/x.csv': No such file or directory (ENOENT); nothing "
                           "half-written was left behind; fix the problem, then rerun the same command\n")


def test_predict_out_never_writes_into_the_run_store(tiny_study, tmp_path, capsys):
    weights = tiny_study / "weights.safetensors"
    before = weights.read_bytes()
    files = sorted(p.name for p in tiny_study.iterdir())
    proc = _cli("predict", str(tiny_study), "breast_cancer", "--out", str(weights), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "never written there" in proc.stderr
    assert weights.read_bytes() == before
    for target in (tiny_study / "pred.csv", tiny_study.parent / "pred.csv", tiny_study.parent.parent / "superseded"
                   / "pred.csv", tiny_study / "sub" / "pred.csv"):
        rc, _, err = _predict(capsys, tiny_study, "breast_cancer", "--out", target)
        _one_line_error(rc, err, "part of a study's run store")
        assert not target.exists()
    assert sorted(p.name for p in tiny_study.iterdir()) == files
    store.verify_run(tiny_study)

    link = tmp_path / "innocent.csv"
    link.symlink_to(weights)  # a link into the run folder is the run folder
    rc, _, err = _predict(capsys, tiny_study, "breast_cancer", "--out", link)
    _one_line_error(rc, err, "part of a study's run store")
    assert weights.read_bytes() == before

    folder = tmp_path / "existing"
    folder.mkdir()
    rc, _, err = _predict(capsys, tiny_study, "breast_cancer", "--out", folder)
    _one_line_error(rc, err, "is a folder; give a file name")
    assert list(folder.iterdir()) == []

    ok = tiny_study.parent.parent / "predictions.csv"  # beside runs/ in the study folder is fine
    rc, out, err = _predict(capsys, tiny_study, "breast_cancer", "--out", ok)
    assert rc == 0 and ok.is_file(), err
    ok.unlink()


@pytest.mark.parametrize("args", [["--help"], ["predict", "--help"]])
def test_the_help_says_predict_gives_values_for_a_regression_run(capsys, args):
    """A regression run's predictions are values (a `predicted` column), not class probabilities."""
    assert run_cli(app, args) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())  # the help boxes wrap lines
    assert "Predict class probabilities" not in text
    assert "class probabilities, or values for a regression run" in text
