"""Data from the command line: --data/--target over a preset, preprocessing of penguins, predict with the saved
imputer. Every test runs the real console script in a subprocess."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from console import run_learnact as _learnact

penguins = pytest.importorskip("palmerpenguins")

def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def test_headline_preset_on_a_csv_with_string_labels(tmp_path: Path):
    from sklearn.datasets import load_breast_cancer

    b = load_breast_cancer(as_frame=True)
    frame = b.data.iloc[:, :6].assign(diagnosis=np.where(b.target == 1, "benign", "malignant"))
    frame.to_csv(tmp_path / "cells.csv", index=False)
    proc = _learnact("run", "--preset", "headline", "--data", "cells.csv", "--target", "diagnosis",
                     "--out", "study", "--no-report", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = json.loads((tmp_path / "study" / "study.json").read_text())
    assert study["name"] == "headline" and study["data"]["dataset"] == "cells.csv"
    assert study["data"]["target"] == "diagnosis"
    runs = sorted((tmp_path / "study" / "runs").iterdir())
    assert len(runs) == 15  # the preset's 3 variants x 5 seeds, on the user's data
    pre = json.loads((runs[0] / "preprocessing.json").read_text())
    assert pre["class_names"] == ["benign", "malignant"] and len(pre["scaler"]["mean"]) == 6
    board = pd.read_csv(tmp_path / "study" / "leaderboard.csv")
    assert (board["accuracy_mean"] > 0.8).all()


PENGUINS_STUDY = textwrap.dedent("""
    name = "penguins"
    seeds = [1, 2]
    [data]
    dataset = "penguins"
    one_hot = true
    impute = "median"
    missing_indicators = true
    [backbone]
    hidden = [16]
    [train]
    max_epochs = 40
    [[variants]]
    name = "tanh"
    kind = "fixed"
    activation = "tanh"
    [[variants]]
    name = "gated"
    kind = "gated"
    candidates = ["relu", "tanh"]
""")


@pytest.fixture(scope="module")
def penguin_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("penguins")
    (root / "study.toml").write_text(PENGUINS_STUDY)
    proc = _learnact("run", "study.toml", "--out", "study", "--no-report", "-q", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root


def test_a_penguins_study_with_one_hot_and_imputation_trains(penguin_study: Path):
    board = pd.read_csv(penguin_study / "study" / "leaderboard.csv")
    assert set(board["variant"]) == {"tanh", "gated"} and (board["n_seeds"] == 2).all()
    assert (board["accuracy_mean"] > 0.9).all()  # penguin species are nearly separable
    run = next((penguin_study / "study" / "runs").glob("tanh__s1__*"))
    encoder = json.loads((run / "preprocessing.json").read_text())["encoder"]
    assert set(encoder["categories"]) == {"island", "sex"}
    assert set(encoder["indicators"]) == {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
                                          "sex"}  # the columns with missing values in the training part


def test_predict_on_a_penguins_csv_with_missing_values(penguin_study: Path):
    run = next((penguin_study / "study" / "runs").glob("gated__s2__*"))
    raw = penguins.load_penguins().drop(columns=["species"])
    rows = raw[raw.isna().any(axis=1)]  # every row has a missing value; two have no measurement at all
    rows.to_csv(penguin_study / "missing.csv", index=False)
    proc = _learnact("predict", str(run), "missing.csv", "--out", "pred.csv", cwd=penguin_study)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(penguin_study / "pred.csv")
    probs = pred.filter(like="prob_").to_numpy()
    assert len(pred) == len(rows) and np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    assert set(pred["predicted"]) <= {"Adelie", "Chinstrap", "Gentoo"}


def test_predict_matches_the_by_hand_imputation_without_indicators(tmp_path: Path):
    (tmp_path / "study.toml").write_text(PENGUINS_STUDY.replace("missing_indicators = true\n", "")
                                         .replace('impute = "median"', 'impute = "most_frequent"'))
    proc = _learnact("run", "study.toml", "--out", "study", "--no-report", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = next((tmp_path / "study" / "runs").glob("tanh__s1__*"))
    encoder = json.loads((run / "preprocessing.json").read_text())["encoder"]
    raw = penguins.load_penguins().drop(columns=["species"])
    rows = raw[raw.isna().any(axis=1)]
    rows.to_csv(tmp_path / "missing.csv", index=False)
    rows.fillna(encoder["fill"]).to_csv(tmp_path / "filled.csv", index=False)
    for name in ("missing", "filled"):
        proc = _learnact("predict", str(run), f"{name}.csv", "--out", f"{name}_pred.csv", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "missing_pred.csv"), pd.read_csv(tmp_path / "filled_pred.csv"))


def test_penguins_without_preprocessing_names_the_options(tmp_path: Path):
    (tmp_path / "study.toml").write_text(PENGUINS_STUDY.replace("one_hot = true\n", "")
                                         .replace('impute = "median"\n', "").replace("missing_indicators = true\n", ""))
    err = _one_line_error(_learnact("run", "study.toml", "--out", "study", "-q", cwd=tmp_path))
    assert "missing values" in err and 'data.impute = "median"' in err and "--impute median" in err
    assert not (tmp_path / "study" / "runs").exists()
    err = _one_line_error(_learnact("run", "study.toml", "--impute", "median", "--out", "study", "-q", cwd=tmp_path))
    assert "non-numeric feature columns ['island', 'sex']" in err and "--one-hot" in err


@pytest.mark.parametrize("args, problem", [
    (("--impute", "mean"), "data.impute"),
    (("--data", "nope.csv"), "nope.csv"),
    (("--data", "irsi"), "did you mean 'iris'"),
    (("--data", "iris", "--target", "label"), "target"),
])
def test_bad_data_options_are_one_line_errors(tmp_path: Path, args, problem):
    err = _one_line_error(_learnact("run", "--preset", "headline", *args, "--out", "study", "-q", cwd=tmp_path))
    assert problem in err


def test_data_from_a_parquet_file_overrides_the_study_file(tmp_path: Path):
    pytest.importorskip("pyarrow")
    penguins.load_penguins().to_parquet(tmp_path / "birds.parquet")
    study = PENGUINS_STUDY.replace('dataset = "penguins"', 'dataset = "wine"').replace("one_hot = true\n", "") \
        .replace('impute = "median"\n', "").replace("missing_indicators = true\n", "")
    (tmp_path / "study.toml").write_text(study)
    proc = _learnact("run", "study.toml", "--data", "birds.parquet", "--target", "species", "--one-hot", "--impute",
                     "most_frequent", "--out", "study", "--no-report", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "study" / "study.json").read_text())["data"]
    assert data == {"dataset": "birds.parquet", "target": "species", "test_size": 0.25, "val_size": 0.2,
                    "one_hot": True, "impute": "most_frequent"}
    run = next((tmp_path / "study" / "runs").glob("tanh__s1__*"))
    assert json.loads((run / "preprocessing.json").read_text())["class_names"] == ["Adelie", "Chinstrap", "Gentoo"]


TINY_STUDY = 'name = "t"\nseeds = [1]\n[train]\nmax_epochs = 3\n[[variants]]\nname = "relu"\nkind = "fixed"\n' \
             'activation = "relu"\n'


@pytest.mark.parametrize("factor, problem", [
    # it had trained, saved target scale inf in a "finished" run, and then every command called the study corrupt
    (1e200, "CSV 'd.csv' has values too large to standardise in column 'y' (first: column 'y', data row 1 (line 2 "
            "of the file)"),
    # its scale had fallen back to 1 (np.std underflowed to 0): trained in wrong units, R² reported 0.0
    (1e-300, "target column 'y' of CSV 'd.csv' is too small to standardise (standard deviation {sd:.3g}; the "
             "smallest is 6.72e-139"),
], ids=["too-large", "too-small"])
def test_a_regression_target_that_cannot_be_standardised_is_refused_before_the_study_folder(tmp_path: Path, factor,
                                                                                            problem):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X[:, 0] + rng.normal(size=60)
    pd.DataFrame(X, columns=list("abc")).assign(y=y * factor).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "t.toml").write_text(TINY_STUDY)
    err = _one_line_error(_learnact("run", "--config", "t.toml", "--data", "d.csv", "--task", "regression",
                                    "--out", "study", "-q", "--no-report", cwd=tmp_path))
    assert err.startswith(f"learnact: error: {problem.format(sd=np.std(y) * factor)}") and "power of 10" in err and "Warning" not in err, err
    assert not (tmp_path / "study").exists()


def test_whitespace_around_a_label_is_not_a_class_in_training_or_predict(tmp_path: Path):
    # "cat " beside "cat" had become a class of its own, with its own probability column in predict
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    labels = np.where(X[:, 0] > 0, "cat", "dog").astype(object)
    labels[[1, 4, 9]] = [f"{v} " for v in labels[[1, 4, 9]]]
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(label=labels)
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "t.toml").write_text(TINY_STUDY)
    proc = _learnact("run", "--config", "t.toml", "--data", "d.csv", "--out", "study", "-q", "--no-report",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = next((tmp_path / "study" / "runs").iterdir())
    assert json.loads((run / "preprocessing.json").read_text())["class_names"] == ["cat", "dog"]
    proc = _learnact("predict", str(run), "d.csv", "--out", "pred.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert [c for c in pred.columns if c.startswith("prob_")] == ["prob_cat", "prob_dog"]
    assert set(pred["predicted"]) <= {"cat", "dog"}


def test_an_infinite_class_label_is_a_one_line_error(tmp_path: Path):
    labels = np.tile([0.0, 1.0], 30)
    labels[[5, 6]] = np.inf
    pd.DataFrame(np.random.default_rng(0).normal(size=(60, 2)), columns=["a", "b"]).assign(label=labels).to_csv(
        tmp_path / "d.csv", index=False)
    (tmp_path / "t.toml").write_text(TINY_STUDY)
    err = _one_line_error(_learnact("run", "--config", "t.toml", "--data", "d.csv", "--out", "study", "-q",
                                    cwd=tmp_path))
    assert err.startswith("learnact: error: target column 'label' of CSV 'd.csv' has infinite values (first: data "
                          "row 6 (line 7 of the file): inf)")
    assert not (tmp_path / "study").exists()


def test_following_the_advice_for_placeholders_trains(tmp_path: Path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 2)).round(3), columns=["a", "b"]).astype(object)
    frame.loc[[4, 30], "a"] = "?"
    frame["label"] = ["x", "y"] * 30
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "t.toml").write_text(TINY_STUDY)
    err = _one_line_error(_learnact("run", "--config", "t.toml", "--data", "d.csv", "--out", "study", "-q",
                                    cwd=tmp_path))
    assert "column 'a' is numeric except '?' in 2 rows" in err and "one-hot" not in err
    frame.replace("?", np.nan).to_csv(tmp_path / "d.csv", index=False)  # those fields empty, as it says
    proc = _learnact("run", "--config", "t.toml", "--data", "d.csv", "--impute", "median", "--out", "study", "-q",
                     "--no-report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = next((tmp_path / "study" / "runs").iterdir())
    assert json.loads((run / "preprocessing.json").read_text())["scaler"]["feature_names"] == ["a", "b"]


def test_list_datasets_shows_no_class_count_for_regression_sets(tmp_path: Path):
    from learnact.data.sources import DATASETS

    proc = _learnact("list", "datasets", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r[0]: r for r in (line.split() for line in proc.stdout.splitlines()[2:]) if r}
    assert list(rows) == list(DATASETS)
    for name, spec in DATASETS.items():
        assert rows[name][1:5] == [str(spec.rows), str(spec.features),
                                   str(spec.classes) if spec.task == "classification" else "-", spec.task], name
    assert rows["diabetes"][3] == "-" and rows["wine"][3] == "3"


@pytest.mark.parametrize("source", ["penguins", "birds.parquet"])
def test_rows_of_a_source_without_file_lines_are_named_by_data_row_only(tmp_path: Path, source):
    # "data row 4 (line 5 of the file)" for the built-in penguins and for a Parquet file, which have no such line
    pytest.importorskip("pyarrow")
    penguins.load_penguins().to_parquet(tmp_path / "birds.parquet")
    (tmp_path / "t.toml").write_text(TINY_STUDY)
    err = _one_line_error(_learnact("run", "--config", "t.toml", "--data", source, "--target", "species", "--out",
                                    "study", "-q", cwd=tmp_path) if source != "penguins" else
                          _learnact("run", "--config", "t.toml", "--data", source, "--out", "study", "-q",
                                    cwd=tmp_path))
    assert "(first: column 'bill_length_mm', data row 4: nan)" in err and "of the file" not in err
