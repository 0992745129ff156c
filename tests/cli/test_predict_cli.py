import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from learnact import store
from learnact.experiment import run_study, study_from_dict


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s") / "study"
    study = study_from_dict({"name": "t", "seeds": [1], "train": {"max_epochs": 5},
                             "variants": [{"name": "g", "kind": "gated", "gate": "input", "temperature": 0.7}]})
    run_study(study, folder)
    return store.finished_runs(folder)[0]


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "learnact", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_predict_reproduces_saved_test_predictions(tiny_study, tmp_path):
    out = tmp_path / "pred.csv"
    proc = _cli("predict", str(tiny_study), "breast_cancer", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(out)
    saved = store.read_predictions(tiny_study)
    np.testing.assert_allclose(pred["prob_benign"].to_numpy()[saved["row"]], saved["prob"], rtol=1e-6)
    assert set(pred["predicted"]) <= {"malignant", "benign"}


def test_predict_bad_inputs_are_one_line_errors(tiny_study, tmp_path):
    text_csv = tmp_path / "text.csv"
    pd.DataFrame({"a": ["x", "y"]}).to_csv(text_csv, index=False)
    proc = _cli("predict", str(tiny_study), str(text_csv), cwd=tmp_path)
    assert proc.returncode == 2 and "lacks feature columns" in proc.stderr and "Traceback" not in proc.stderr

    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_study, broken)
    (broken / "weights.safetensors").write_bytes(b"not a checkpoint")
    proc = _cli("predict", str(broken), "breast_cancer", cwd=tmp_path)
    assert proc.returncode == 2 and "corrupt checkpoint" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr

    proc = _cli("predict", str(tmp_path / "nope"), "breast_cancer", cwd=tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
