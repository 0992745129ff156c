"""`learnact compare`: the comparison table in the terminal, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from learnact import store
from learnact.cli.app import app
from learnact.cli.errors import run_cli
from learnact.evaluation import COMPARISON_COLUMNS, paired_comparisons, tidy_results

TINY = {
    "name": "tiny_compare",
    "seeds": [1, 7, 21],
    "backbone": {"hidden": [8]},
    "train": {"max_epochs": 4, "patience": 2},
    "reference": "baseline_tanh",
    "variants": [
        {"name": "baseline_tanh", "kind": "fixed", "activation": "tanh"},
        {"name": "baseline_relu", "kind": "fixed", "activation": "relu"},
        {"name": "static_T0.7", "kind": "gated", "gate": "layer", "temperature": 0.7},
    ],
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from learnact.experiment import run_study, study_from_dict

    folder = tmp_path_factory.mktemp("cmp") / "study"
    run_study(study_from_dict(TINY), folder)
    return folder


def _compare(capsys, *args):
    rc = run_cli(app, ["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_prints_the_comparison_table(study, capsys):
    rc, out, err = _compare(capsys, study)
    assert rc == 0, err
    assert "vs baseline_tanh (the study's reference)" in out
    for name in ("baseline_relu", "static_T0.7", "roc_auc", "accuracy", "f1", "Nadeau-Bengio"):
        assert name in out
    # The printed difference and p-value are the library's numbers.
    table = paired_comparisons(tidy_results(study), "baseline_tanh", ["roc_auc"]).set_index("variant")
    row = table.loc["static_T0.7"]
    def signed(v):  # the table prints a signed value, and a bare 0.0000 when it rounds to zero
        text = f"{v:+.4f}"
        return text[1:] if float(text) == 0 else text

    assert signed(row["mean_diff"]) in out and f"[{signed(row['ci_low'])}, {signed(row['ci_high'])}]" in out
    assert f"{row['p_value']:.3f}" in out or f"{row['p_value']:.2g}" in out


def test_reference_and_metric_options_and_csv(study, capsys, tmp_path):
    csv = tmp_path / "cmp.csv"
    rc, out, err = _compare(capsys, study, "--reference", "baseline_relu", "--metric", "log_loss", "--csv", csv)
    assert rc == 0, err
    assert "vs baseline_relu (given)" in out and "log_loss" in out and "roc_auc" not in out
    table = pd.read_csv(csv)
    assert tuple(table.columns) == COMPARISON_COLUMNS
    assert table["variant"].tolist() == ["baseline_tanh", "static_T0.7"] and (table["metric"] == "log_loss").all()


def test_not_comparable_is_shown_as_such(study, capsys, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(study, folder)
    for run in store.finished_runs(folder):
        if run.name.startswith("static_T0.7__") and "__s1__" not in run.name:
            (run / "DONE").unlink()
    rc, out, _ = _compare(capsys, folder, "-m", "roc_auc")
    assert rc == 0
    line = next(line for line in out.splitlines() if "static_T0.7" in line)
    assert "not comparable" in line and "shared" in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}"], "study folder '{missing}' does not exist"),
        (["{study}", "--reference", "baseline_tahn"], "unknown reference 'baseline_tahn' (did you mean 'baseline_tanh'?)"),
        (["{study}", "--metric", "roc_au"], "unknown metric 'roc_au' (did you mean 'roc_auc'?)"),
        (["{empty}"], "has no finished runs"),
    ],
)
def test_errors_are_one_line_exit_2(study, capsys, tmp_path, args, message):
    fill = {"missing": tmp_path / "nope", "study": study, "empty": tmp_path}
    rc, out, err = _compare(capsys, *[a.format(**fill) for a in args])
    assert rc == 2
    assert err.startswith("learnact: error: ") and len(err.strip().splitlines()) == 1
    assert message.format(**fill) in err
    assert "Traceback" not in err


def test_study_reference_without_runs_is_an_error(study, capsys, tmp_path):
    folder = tmp_path / "ref"
    shutil.copytree(study, folder)
    for run in store.finished_runs(folder):
        if run.name.startswith("baseline_tanh__"):
            shutil.rmtree(run)
    rc, _, err = _compare(capsys, folder)
    assert rc == 2 and "study's reference 'baseline_tanh' has no finished runs" in err
    rc, out, _ = _compare(capsys, folder, "-r", "baseline_relu")
    assert rc == 0 and "vs baseline_relu" in out


def test_entry_point(study):
    proc = subprocess.run([sys.executable, "-m", "learnact", "compare", str(study), "-m", "roc_auc"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "static_T0.7" in proc.stdout
    raw = json.loads((study / "study.json").read_text())
    assert raw["reference"] == "baseline_tanh"


def test_a_metric_given_twice_is_compared_once_in_the_order_first_given(study, tmp_path):
    from console import run_learnact

    proc = run_learnact("compare", study, "-m", "roc_auc", "-m", "accuracy", "-m", "roc_auc", "--csv",
                        tmp_path / "cmp.csv", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("│")[1:3] for line in proc.stdout.splitlines() if line.startswith("│")]
    assert [[c.strip() for c in r] for r in rows] == [["roc_auc", "baseline_relu"], ["roc_auc", "static_T0.7"],
                                                      ["accuracy", "baseline_relu"], ["accuracy", "static_T0.7"]]
    written = pd.read_csv(tmp_path / "cmp.csv")
    assert list(written["metric"]) == ["roc_auc", "roc_auc", "accuracy", "accuracy"]
    table = paired_comparisons(tidy_results(study), "baseline_tanh", ("accuracy", "accuracy"))
    assert list(table["metric"]) == ["accuracy", "accuracy"] and list(table["variant"]) == ["baseline_relu",
                                                                                           "static_T0.7"]
