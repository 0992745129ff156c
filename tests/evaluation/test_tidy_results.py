"""The tidy results table, results.csv, seed aggregates and the leaderboard, from a real tiny study."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from learnact import store
from learnact.evaluation import (
    AGGREGATE_COLUMNS,
    COSTS,
    RESULTS_COLUMNS,
    describe_quantity,
    leaderboard,
    load_results,
    per_run,
    seed_aggregates,
    tidy_results,
    write_results,
)
from learnact.evaluation.metrics import task_metrics
from learnact.exceptions import RunStoreError

VARIANTS = ["baseline_tanh", "baseline_relu", "static_T0.7_lam0.01", "neuron_T1", "input_T0.7", "input_layer_T1"]


@pytest.fixture(scope="module")
def tidy(tiny_study):
    return tidy_results(tiny_study)


def test_one_row_per_run_and_quantity(tidy, tiny_study):
    assert tuple(tidy.columns) == RESULTS_COLUMNS
    assert list(dict.fromkeys(tidy["variant"])) == VARIANTS  # study order
    assert not tidy.duplicated(["run_id", "metric"]).any()
    per_run = tidy.groupby("run_id")["metric"].count()
    # 6 metrics + 6 costs, plus per gated layer 7 statistics and one arg-max share per candidate.
    base = len(task_metrics("classification")) + len(COSTS)
    expected = {"baseline_tanh": base, "baseline_relu": base, "static_T0.7_lam0.01": base + 2 * (7 + 3),
                "neuron_T1": base + 2 * (7 + 3), "input_T0.7": base + 2 * (7 + 3),
                "input_layer_T1": base + 2 * (7 + 2)}
    for run_id, count in per_run.items():
        assert count == expected[run_id.split("__")[0]]
    assert set(tidy["group"]) == {"performance", "cost", "gate"}
    assert len(per_run) == len(store.finished_runs(tiny_study)) == 18


def test_values_come_from_the_run_folders(tidy, tiny_study):
    for folder in store.finished_runs(tiny_study):
        metrics = store.read_metrics(folder)
        rows = tidy[tidy["run_id"] == folder.name].set_index("metric")
        for name in [*task_metrics("classification"), *COSTS]:
            assert rows.loc[name, "value"] == pytest.approx(metrics[name], nan_ok=True)
        split = store.read_preprocessing(folder)["split"]
        assert rows["n_train"].iloc[0] == len(split["train"]) and rows["n_test"].iloc[0] == len(split["test"])
        assert rows["n_val"].iloc[0] == len(split["val"])


def test_variant_fields(tidy):
    first = tidy.drop_duplicates("variant").set_index("variant")
    fixed, static, inp, two = (first.loc[v] for v in ("baseline_tanh", "static_T0.7_lam0.01", "input_T0.7",
                                                      "input_layer_T1"))
    assert (fixed["kind"], fixed["activation"], fixed["candidates"], fixed["gate"]) == ("fixed", "tanh", "", "")
    assert math.isnan(fixed["temperature"])
    assert (static["kind"], static["gate"], static["temperature"], static["entropy_weight"]) == \
        ("gated", "layer", 0.7, 0.01)
    assert static["candidates"] == "relu+tanh+sigmoid" and static["gate_source"] == "" and static["activation"] == ""
    assert (inp["gate"], inp["gate_source"], inp["gate_hidden"]) == ("input", "network", 16)
    assert (two["candidates"], two["gate_source"], two["gate_hidden"]) == ("relu+tanh", "layer", 4)
    assert (fixed["hidden"], fixed["dataset"], fixed["max_epochs"], fixed["patience"]) == ("16-8", "breast_cancer", 8, 3)
    assert sorted(tidy["seed"].unique()) == [1, 7, 21]


def test_write_and_load_round_trip(tidy, tiny_study, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_study, folder)
    path = write_results(folder)
    assert path == folder / "results.csv" and path.is_file()
    back = load_results(folder)
    pd.testing.assert_frame_equal(back, tidy)
    assert back.attrs["reference"] is None


def test_rebuilt_from_run_folders_alone(tiny_study, tmp_path):
    """No study.json, no results.csv: the table still rebuilds (every finished run, sorted)."""
    folder = tmp_path / "bare"
    shutil.copytree(tiny_study / "runs", folder / "runs")
    table = tidy_results(folder)
    assert table["run_id"].nunique() == 18 and set(table["variant"]) == set(VARIANTS)


def test_unfinished_and_superseded_runs_are_left_out(tiny_study, tmp_path):
    folder = tmp_path / "stale"
    shutil.copytree(tiny_study, folder)
    runs = {f.name.split("__")[0]: f for f in store.finished_runs(folder)}
    (runs["neuron_T1"] / "DONE").unlink()  # unfinished
    shutil.copytree(runs["baseline_tanh"], folder / "superseded" / "baseline_tanh__s1__0000000000")
    table = tidy_results(folder)
    assert table["run_id"].nunique() == 17
    assert table[table["variant"] == "neuron_T1"]["run_id"].nunique() == 2
    assert not table["run_id"].str.endswith("__0000000000").any()


def test_study_reference_is_attached(tiny_study, tmp_path):
    folder = tmp_path / "ref"
    shutil.copytree(tiny_study, folder)
    raw = json.loads((folder / "study.json").read_text())
    raw["reference"] = "baseline_relu"
    (folder / "study.json").write_text(json.dumps(raw))
    assert tidy_results(folder).attrs["reference"] == "baseline_relu"


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(RunStoreError, match="does not exist"):
        tidy_results(tmp_path / "missing")
    with pytest.raises(RunStoreError, match="no results.csv"):
        load_results(tmp_path)
    empty = tidy_results(tmp_path)
    assert empty.empty and tuple(empty.columns) == RESULTS_COLUMNS


def test_seed_aggregates(tidy):
    agg = seed_aggregates(tidy)
    assert tuple(agg.columns[: len(AGGREGATE_COLUMNS)]) == AGGREGATE_COLUMNS
    assert {"kind", "gate", "temperature", "entropy_weight", "candidates"} <= set(agg.columns)
    assert len(agg) == len(tidy.drop_duplicates(["variant", "metric"]))
    row = agg[(agg["variant"] == "input_T0.7") & (agg["metric"] == "roc_auc")].iloc[0]
    vals = tidy[(tidy["variant"] == "input_T0.7") & (tidy["metric"] == "roc_auc")]["value"].to_numpy()
    assert row["n"] == 3 and row["mean"] == pytest.approx(vals.mean()) and row["std"] == pytest.approx(vals.std(ddof=1))
    half = 4.302652729911275 * vals.std(ddof=1) / math.sqrt(3)  # t quantile 0.975, 2 degrees of freedom
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((vals.mean() - half, vals.mean() + half))
    assert row["median"] == pytest.approx(np.median(vals))
    assert row["iqr"] == pytest.approx(np.percentile(vals, 75) - np.percentile(vals, 25))
    assert (row["group"], row["label"], row["higher_is_better"]) == ("performance", "ROC-AUC", True)
    cost = agg[(agg["variant"] == "baseline_tanh") & (agg["metric"] == "n_params")].iloc[0]
    assert cost["group"] == "cost" and cost["higher_is_better"] is False and cost["std"] == 0
    gate = agg[(agg["variant"] == "neuron_T1") & (agg["metric"] == "gate2_entropy_mean")].iloc[0]
    assert gate["group"] == "gate" and gate["n"] == 3 and gate["higher_is_better"] is None
    assert gate["temperature"] == 1.0


def test_seed_aggregates_needs_a_tidy_table():
    with pytest.raises(ValueError, match=r"lacks columns \['metric', 'value'\]"):
        seed_aggregates(pd.DataFrame({"variant": ["a"]}))


def test_describe_quantity():
    assert describe_quantity("gate2_argmax_tanh").group == "gate"
    assert describe_quantity("peak_memory_mb").unit == "MB"
    with pytest.raises(ValueError, match="unknown quantity 'gate1_bogus'"):
        describe_quantity("gate1_bogus")


def test_per_run_is_the_tidy_table_one_row_per_run(tiny_study, tidy):
    wide = per_run(tidy)
    folders = store.finished_runs(tiny_study)
    assert sorted(wide["run_id"]) == sorted(f.name for f in folders)
    assert list(wide.columns[:4]) == ["run_id", "variant", "seed", "status"]
    for folder in folders:  # every number as metrics.json has it, read independently of the table
        raw = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        row = wide.set_index("run_id").loc[folder.name]
        assert (row["variant"], row["seed"]) == (config["variant"], config["seed"])
        for name in ("accuracy", "roc_auc", "log_loss", "best_epoch", "n_params", "train_time_s"):
            assert row[name] == pytest.approx(raw[name], rel=0, abs=0)
    fixed = wide[wide["variant"] == "baseline_tanh"]
    gate_cols = [c for c in wide.columns if c.startswith("gate")]
    assert gate_cols and fixed[gate_cols].isna().all().all()  # a fixed run has no gate statistics
    board = leaderboard(tidy).set_index("variant")
    for variant, runs in wide.groupby("variant"):
        assert board.loc[variant, "accuracy_mean"] == pytest.approx(runs["accuracy"].mean())
    with pytest.raises(ValueError, match="lacks \\['metric', 'value'\\]"):
        per_run(wide)


def test_duplicate_variant_seed_keeps_the_newer_run(tiny_study, tmp_path):
    import hashlib
    import os

    folder = tmp_path / "dup"
    shutil.copytree(tiny_study / "runs", folder / "runs")  # no study.json: every finished run counts
    src = next(f for f in store.finished_runs(folder) if f.name.startswith("baseline_tanh__s1__"))
    copy = src.parent / (src.name.rsplit("__", 1)[0] + "__ffffffffff")
    shutil.copytree(src, copy)  # a run of its own (another id): its marker and manifest name it
    (copy / store.MARKER).write_text(copy.name + "\n")
    files = {p.name: p.read_bytes() for p in copy.iterdir() if p.name not in (store.MANIFEST, store.DONE)}
    manifest = store._manifest_bytes(copy.name, files)
    (copy / store.MANIFEST).write_bytes(manifest)
    (copy / store.DONE).write_text(hashlib.sha256(manifest).hexdigest() + "\n")
    os.utime(src / "DONE", (1, 1))  # the original finished long ago
    with pytest.warns(UserWarning, match="two finished runs for variant 'baseline_tanh' seed 1"):
        table = tidy_results(folder)
    ids = set(table.loc[(table["variant"] == "baseline_tanh") & (table["seed"] == 1), "run_id"])
    assert ids == {copy.name}
