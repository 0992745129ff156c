"""Divergence never blocks a study: through the real console script, as a user meets it.

Two studies:

- every kind of figure's variants plus a fixed and a gated variant with a
  learning rate of 1e30 (NaN at the first epoch on every seed): ``learnact
  run`` exits 0, prints the leaderboard with the diverged counts, builds the
  whole report, and ``compare``, ``report`` and a rerun work on the folder;
- fixed activations only, one diverged run in each of two variants (a
  training row set to inf for that seed, so exactly that run diverges,
  whatever the platform's rounding): the leaderboard averages the finished
  seeds, the report (whose ROC figure draws the reference) is whole, and
  ``compare`` pairs the seeds both variants finished, checked against
  numbers computed here from the run folders.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from learnact import store
from learnact.experiment import build_artifacts, prepare_splits, study_from_dict
from learnact.experiment.engines import split_key, train_one
from learnact.experiment.grid import study_to_dict
from learnact.reporting.figures import FIGURES, figures_for

SRC = Path(__file__).resolve().parents[2] / "src"

NAN_STUDY = """\
name = "nan_study"
seeds = [1, 2]

[backbone]
hidden = [8, 4]

[train]
max_epochs = 4
patience = 2

[[variants]]
name = "fixed_tanh"
kind = "fixed"
activation = "tanh"

[[variants]]
name = "fixed_nan"
kind = "fixed"
activation = "tanh"
lr = 1e30

[[variants]]
name = "static_cold"
kind = "gated"
gate = "layer"
temperature = 0.5

[[variants]]
name = "static_warm"
kind = "gated"
gate = "layer"
temperature = 1.0

[[variants]]
name = "reg_none"
kind = "gated"
gate = "layer"
temperature = 0.7

[[variants]]
name = "reg_strong"
kind = "gated"
gate = "layer"
temperature = 0.7
entropy_weight = 0.01

[[variants]]
name = "per_unit"
kind = "gated"
gate = "neuron"
temperature = 0.7

[[variants]]
name = "input_gate"
kind = "gated"
gate = "input"
gate_source = "network"
gate_hidden = 4

[[variants]]
name = "gated_nan"
kind = "gated"
gate = "layer"
temperature = 0.7
lr = 1e30
"""

NAN_VARIANTS = ("fixed_nan", "gated_nan")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "learnact", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def _assert_whole_report(report: Path, not_applicable: tuple[str, ...] = (),
                         tables: tuple[str, ...] = ("leaderboard", "comparisons", "gate_diagnostics")) -> None:
    """index.md, report.tex, the tables and every figure the study's variants allow (PNG and PDF)."""
    index = (report / "index.md").read_text()
    skipped = index.split("## Not drawn for this study")[1] if "## Not drawn for this study" in index else ""
    titles = {spec.name: spec.title for spec in FIGURES}
    assert {line.split("**")[1] for line in skipped.splitlines() if line.startswith("- **")} == \
        {titles[name] for name in not_applicable}, skipped
    for spec in figures_for("classification"):
        if spec.name in not_applicable:
            continue
        for ext in ("png", "pdf"):
            assert (report / "figures" / f"{spec.name}.{ext}").stat().st_size > 0, (spec.name, ext)
    for name in tables:
        assert (report / "tables" / f"{name}.csv").is_file(), name
    assert (report / "report.tex").is_file()


@pytest.fixture(scope="module")
def nan_study(tmp_path_factory):
    """The 9-variant study with two all-NaN variants, run once through ``learnact run``."""
    root = tmp_path_factory.mktemp("nan_cli")
    (root / "study.toml").write_text(NAN_STUDY)
    proc = _cli("run", "-c", "study.toml", "--out", "out", "--engine", "vectorized", cwd=root)
    return root, proc


def test_a_study_with_nan_runs_completes_and_prints_its_diverged_counts(nan_study):
    root, proc = nan_study
    out = _ok(proc)
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in out.splitlines() if line.startswith("│")}
    for v in NAN_VARIANTS:
        assert lines[v][:3] == ["0", "2", "-"], (v, lines[v])  # n finished, diverged, accuracy
    assert lines["fixed_tanh"][:2] == ["2", "0"] and "±" in lines["fixed_tanh"][2]
    assert "4 diverged runs excluded from the statistics (fixed_nan: 2, gated_nan: 2)." in " ".join(out.split())
    assert "diverged:     fixed_nan: seeds 1, 2 diverged (epoch 1: non-finite" in out
    folder = root / "out"
    board = pd.read_csv(folder / "leaderboard.csv").set_index("variant")
    assert board.loc[list(NAN_VARIANTS), "n_diverged"].tolist() == [2, 2]
    assert board.loc[list(NAN_VARIANTS), "n_seeds"].tolist() == [0, 0]
    assert (board.drop(index=list(NAN_VARIANTS))[["n_seeds", "n_diverged"]] == [2, 0]).all().all()
    results = pd.read_csv(folder / "results.csv")
    assert set(results.loc[results["variant"].isin(NAN_VARIANTS), "status"]) == {"diverged"}
    assert set(results.loc[~results["variant"].isin(NAN_VARIANTS), "status"]) == {"finished"}
    for run in store.finished_runs(folder):
        metrics = json.loads((run / "metrics.json").read_text())
        if run.name.split("__")[0] in NAN_VARIANTS:
            assert (metrics["status"], metrics["diverged_epoch"]) == ("diverged", 1)
            assert metrics["diverged_reason"].startswith("non-finite training loss")
        else:
            assert (metrics["status"], metrics["diverged_epoch"], metrics["diverged_reason"]) == \
                ("finished", None, None)


def test_the_whole_report_is_built_and_says_what_was_excluded(nan_study):
    root, proc = nan_study
    _ok(proc)
    report = root / "out" / "report"
    _assert_whole_report(report)
    index = (report / "index.md").read_text()
    assert "6 finished runs" not in index and "14 finished runs and 4 diverged runs" in index
    shown = figures_for("classification")
    assert index.count("4 diverged runs excluded from the statistics") >= 1 + len(shown)  # protocol + figures
    table = pd.read_csv(report / "tables" / "leaderboard.csv").set_index("variant")
    assert table.loc["gated_nan", "n_diverged"] == 2 and table.loc["gated_nan", "n_seeds"] == 0
    diag = pd.read_csv(report / "tables" / "gate_diagnostics.csv")
    assert diag.set_index("variant").loc["gated_nan", "n_diverged"] == 2


def test_compare_treats_the_finished_seeds_as_shared(nan_study):
    root, proc = nan_study
    _ok(proc)
    out = _ok(_cli("compare", "out", "--reference", "fixed_tanh", "--csv", "cmp.csv", cwd=root))
    assert "4 diverged runs excluded" in " ".join(out.split())
    cmp = pd.read_csv(root / "cmp.csv")
    finished = cmp[~cmp["variant"].isin(NAN_VARIANTS)]
    assert finished["comparable"].all() and (finished["n_shared"] == 2).all() and (finished["n_diverged"] == 0).all()
    dead = cmp[cmp["variant"].isin(NAN_VARIANTS)]
    assert (~dead["comparable"]).all() and (dead["n_diverged"] == 2).all()
    assert set(dead["status"]) == {"not comparable (0 shared seeds; 2 diverged; need 2)"}


@pytest.mark.slow  # a rerun and a second full report of the NaN study (about 40 s); in CI, the partial study's
# rerun below trains none of its finished or diverged runs and counts the diverged ones, and the NaN study's own
# report is checked whole above
def test_a_rerun_and_learnact_report_work_on_the_folder(nan_study, tmp_path):
    root, proc = nan_study
    _ok(proc)
    study = tmp_path / "out"  # a copy: the report built here must not race the other tests reading the original
    shutil.copytree(root / "out", study)
    rerun = _ok(_cli("run", "--out", str(study), "--no-report", cwd=tmp_path))
    assert "(0 trained, 18 already done)" in rerun and "fixed_nan: seeds 1, 2 diverged" in rerun
    _ok(_cli("report", str(study), cwd=tmp_path))
    _assert_whole_report(study / "report")
    _ok(_cli("compare", str(study), cwd=tmp_path))


# --- one diverged run in each of two variants -------------------------------------------------------------------

PARTIAL = {
    "name": "partial",
    "seeds": [1, 2, 3, 4],
    "reference": "fixed_tanh",
    "backbone": {"hidden": [8, 4]},
    "train": {"max_epochs": 4, "patience": 2},
    "variants": [
        {"name": "fixed_tanh", "kind": "fixed", "activation": "tanh"},
        {"name": "fixed_relu", "kind": "fixed", "activation": "relu"},
    ],
}
POISONED = {("fixed_tanh", 2), ("fixed_relu", 3)}


@pytest.fixture(scope="module")
def partial_study(tmp_path_factory):
    """The study's run folders as the runner writes them; two runs trained on a split with an inf row."""
    folder = tmp_path_factory.mktemp("partial") / "study"
    study = study_from_dict(PARTIAL)
    runs = study.runs()
    splits = prepare_splits(runs)
    folder.mkdir()
    store.write_json_atomic(folder / "study.json", study_to_dict(study))
    for run in runs:
        split = splits[split_key(run)]
        if (run.variant, run.seed) in POISONED:
            X = split.X_train.copy()
            X[5, 0] = np.inf  # the first mini-batch holding row 5 has a non-finite loss
            split = dataclasses.replace(split, X_train=X)
        store.write_run(folder, build_artifacts(train_one(run, split)))
    return folder


def _metrics(folder: Path) -> dict[tuple[str, int], dict]:
    out = {}
    for run in store.finished_runs(folder):
        cfg = store.read_run_config(run)
        out[(cfg.variant, cfg.seed)] = store.read_metrics(run)
    return out


def test_terminal_leaderboard_averages_the_finished_seeds(partial_study):
    metrics = _metrics(partial_study)
    out = _ok(_cli("run", "--out", str(partial_study), "--no-report", cwd=partial_study.parent))
    assert "(0 trained, 8 already done)" in out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│")}
    for variant in ("fixed_tanh", "fixed_relu"):
        acc = np.array([m["accuracy"] for (v, s), m in metrics.items() if v == variant and (v, s) not in POISONED])
        assert rows[variant][:3] == ["3", "1", f"{acc.mean():.4f} ± {np.std(acc, ddof=1):.4f}"], rows[variant]
    note = " ".join(out.split())
    assert "2 diverged runs excluded from the statistics (" in note and "fixed_tanh: 1" in note and \
        "fixed_relu: 1" in note
    assert {k for k, m in metrics.items() if m["status"] == "diverged"} == POISONED


@pytest.mark.parametrize("which", ["partial", "nan"])
def test_terminal_leaderboard_csv_and_report_table_hold_the_same_numbers(partial_study, nan_study, which):
    # One source: the tidy results table and its seed aggregates. The terminal's cells, leaderboard.csv and the
    # report's tables/leaderboard.csv agree for every variant, those with a diverged run or only diverged runs too.
    if which == "partial":
        folder = partial_study
        out = _ok(_cli("run", "--out", str(folder), cwd=folder.parent))
    else:
        root, proc = nan_study
        folder, out = root / "out", _ok(proc)
    terminal = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
                for line in out.splitlines() if line.startswith("│")}
    board = pd.read_csv(folder / "leaderboard.csv").set_index("variant")
    report = pd.read_csv(folder / "report" / "tables" / "leaderboard.csv").set_index("variant")
    assert set(terminal) == set(board.index) == set(report.index)
    assert board.loc[list(terminal), "n_diverged"].sum() > 0
    for variant, cells in terminal.items():
        b, r = board.loc[variant], report.loc[variant]
        assert cells[:2] == [str(int(b["n_seeds"])), str(int(b["n_diverged"]))]
        assert (int(r["n_seeds"]), int(r["n_diverged"])) == (int(b["n_seeds"]), int(b["n_diverged"]))
        for i, metric in enumerate(("accuracy", "f1", "roc_auc")):
            mean, std = b[f"{metric}_mean"], b[f"{metric}_std"]
            np.testing.assert_array_equal([r[f"{metric}_mean"], r[f"{metric}_std"]], [mean, std])
            shown = "-" if not np.isfinite(mean) else (f"{mean:.4f} ± {std:.4f}" if np.isfinite(std) else
                                                       f"{mean:.4f}")
            assert cells[2 + i] == shown, (variant, metric)
        for cost in ("flops_per_sample", "step_latency_ms"):
            np.testing.assert_array_equal(r[f"{cost}_mean"], b[f"{cost}_mean"])
        np.testing.assert_array_equal(r["n_params_mean"], b["params_mean"])


def test_report_draws_a_reference_with_a_diverged_run(partial_study):
    # the diverged fixed run belongs to the reference, which the ROC figure draws: its NaN predictions never get there
    out = _ok(_cli("report", str(partial_study), cwd=partial_study.parent))
    assert "index.md" in out
    gate_figures = ("gate_selectivity", "sweep_temperature", "sweep_entropy_weight", "activation_shapes",
                    "gate_weights", "gate_evolution", "case_studies")
    _assert_whole_report(partial_study / "report", gate_figures, ("leaderboard", "comparisons"))
    index = (partial_study / "report" / "index.md").read_text()
    assert "6 finished runs and 2 diverged runs" in index


def test_compare_pairs_the_seeds_both_variants_finished(partial_study):
    metrics = _metrics(partial_study)
    csv = partial_study.parent / "partial_cmp.csv"
    _ok(_cli("compare", str(partial_study), "-m", "accuracy", "-m", "train_time_s", "--csv", str(csv),
             cwd=partial_study.parent))
    cmp = pd.read_csv(csv).set_index("metric")
    for metric in ("train_time_s", "accuracy"):  # train time is finite for a diverged run too: still left out
        row = cmp.loc[metric]
        assert bool(row["comparable"]) and row["n_shared"] == 2 and str(row["seeds"]) == "1,4", (metric, row)
        diffs = [metrics[("fixed_relu", s)][metric] - metrics[("fixed_tanh", s)][metric] for s in (1, 4)]
        assert math.isclose(row["mean_diff"], float(np.mean(diffs)), rel_tol=1e-9, abs_tol=1e-12)
        assert row["n_diverged"] == 2
