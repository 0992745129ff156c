"""`learnact compare RESULTS.csv`: a user's own runs, compared like a study's, through the real console script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from console import run_learnact
from learnact.evaluation import COMPARISON_COLUMNS, tidy_results, write_results


def _learnact(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_learnact(*args, cwd=cwd, timeout=300)


TINY = {
    "name": "tiny_csv",
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

RUNS = pd.DataFrame({
    "variant": ["relu"] * 4 + ["gated"] * 4 + ["swish"] * 4,
    "seed": [0, 1, 2, 3] * 3,
    "accuracy": [0.90, 0.91, 0.89, 0.92, 0.93, 0.92, 0.92, 0.925, 0.88, 0.90, 0.90, 0.91],
    "loss": [0.30, 0.29, 0.31, 0.28, 0.25, 0.26, 0.27, 0.26, 0.33, 0.30, 0.31, 0.30],
    "epochs": [10, 11, 9, 12, 12, 10, 13, 11, 8, 9, 10, 9],
})


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture()
def runs_csv(tmp_path):
    path = tmp_path / "results.csv"
    RUNS.to_csv(path, index=False)
    return path


def test_csv_of_own_runs_gives_the_paired_t_test_by_hand(runs_csv, tmp_path):
    out = tmp_path / "cmp.csv"
    proc = _learnact("compare", runs_csv, "--reference", "relu", "--lower-is-better", "loss", "--csv", out,
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "vs relu (given)" in proc.stdout and "gated" in proc.stdout and "swish" in proc.stdout
    caption = " ".join(proc.stdout.split())  # the caption wraps
    assert "paired t-test" in caption and "Not compared (direction unknown): epochs" in caption
    table = pd.read_csv(out)
    assert tuple(table.columns) == COMPARISON_COLUMNS
    assert table["metric"].tolist() == ["accuracy", "accuracy", "loss", "loss"]  # epochs: no known direction
    wide = RUNS.set_index(["variant", "seed"])
    p = {}
    for _, row in table.iterrows():
        d = wide.loc[row["variant"], row["metric"]].to_numpy() - wide.loc["relu", row["metric"]].to_numpy()
        by_hand = stats.ttest_rel(wide.loc[row["variant"], row["metric"]], wide.loc["relu", row["metric"]])
        assert row["mean_diff"] == pytest.approx(d.mean())
        assert row["p_value"] == pytest.approx(by_hand.pvalue, rel=1e-9)
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
        p[row["metric"], row["variant"]] = by_hand.pvalue
        # the direction: gated has lower loss on every seed, which is a win for loss, as higher accuracy is
        better = d < 0 if row["metric"] == "loss" else d > 0
        assert row["wins"] == int(better.sum())
    for metric in ("accuracy", "loss"):  # Holm over the two variants of each metric
        lo, hi = sorted((p[metric, "gated"], p[metric, "swish"]))
        holm = table.set_index(["metric", "variant"])["p_holm"]
        assert sorted(holm[metric].tolist()) == pytest.approx([min(1.0, 2 * lo), min(1.0, max(2 * lo, hi))])


def test_csv_route_equals_the_study_route(tmp_path):
    from learnact.experiment import run_study, study_from_dict

    study = tmp_path / "study"
    run_study(study_from_dict(TINY), study)
    tidy = tidy_results(study)
    metrics = ["roc_auc", "accuracy", "f1"]
    wide = tidy[tidy["metric"].isin(metrics)].pivot_table(
        index=["variant", "seed", "n_train", "n_test"], columns="metric", values="value").reset_index()
    exported = tmp_path / "exported.csv"
    wide[["variant", "seed", "n_train", "n_test", *metrics]].to_csv(exported, index=False)

    from_study, from_csv = tmp_path / "study_cmp.csv", tmp_path / "csv_cmp.csv"
    a = _learnact("compare", study, "--reference", "baseline_tanh", "--csv", from_study, cwd=tmp_path)
    b = _learnact("compare", exported, "--reference", "baseline_tanh", "--csv", from_csv, cwd=tmp_path)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    x, y = pd.read_csv(from_study), pd.read_csv(from_csv)
    assert x[["metric", "variant", "seeds", "status"]].equals(y[["metric", "variant", "seeds", "status"]])
    numbers = [c for c in COMPARISON_COLUMNS if c not in ("metric", "variant", "reference", "seeds", "status",
                                                          "comparable", "higher_is_better")]
    np.testing.assert_allclose(x[numbers].to_numpy(float), y[numbers].to_numpy(float), rtol=1e-12, equal_nan=True)
    # the same terminal table: every row's cells print identically (only the title names the input)
    body = [line for line in a.stdout.splitlines() if "baseline_relu" in line or "static_T0.7" in line]
    assert body and body == [line for line in b.stdout.splitlines() if "baseline_relu" in line or "static" in line]


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda f: f.assign(accuracy=f["accuracy"].astype(object).where(f.index != 3, "0.9O")),
     "non-numeric metric columns ['accuracy'] (first: column 'accuracy', data row 4"),
    (lambda f: f.assign(loss=f["loss"].where(f.index != 5)), "missing values in columns ['loss']"),
    (lambda f: f.assign(loss=f["loss"].where(f.index != 2, np.inf)), "infinite values in columns ['loss']"),
    (lambda f: f.drop(columns="variant"), "has no 'variant' column"),
    (lambda f: f.drop(columns="seed"), "has no 'seed' column"),
    (lambda f: f.assign(seed=[0, 1, 2, 3, 0, 0, 2, 3, 0, 1, 2, 3]),
     "has 2 rows for variant 'gated', seed 0 (data row 5 (line 6 of the file), data row 6"),
    (lambda f: f.assign(seed=f["seed"] + 0.5), "column 'seed' holds whole numbers, got 0.5"),
    (lambda f: f[["variant", "seed"]], "has no metric column"),
    (lambda f: f.assign(n_train=100), "without 'n_test'"),
    (lambda f: f.assign(accuracy=f["accuracy"].where(f.index != 5, 1.9)),
     "column 'accuracy' holds 1.9 at data row 6 (line 7 of the file); accuracy must lie in [0, 1]: fix that value"),
    (lambda f: f.assign(accuracy=f["accuracy"].where(f.index != 2, -0.8)),
     "column 'accuracy' holds -0.8 at data row 3 (line 4 of the file); accuracy must lie in [0, 1]: fix that value"),
    (lambda f: f.assign(accuracy=f["accuracy"] * 100),
     "accuracy must lie in [0, 1]: fix that value, or divide the column by 100 if it holds percentages"),
    (lambda f: f.assign(log_loss=-f["loss"]), "column 'log_loss' holds -0.3 at data row 1 (line 2 of the file); "
                                               "log_loss must be >= 0: fix that value"),
])
def test_bad_csv_is_one_line_with_exit_2(tmp_path, edit, expected):
    path = tmp_path / "bad.csv"
    edit(RUNS.copy()).to_csv(path, index=False)
    line = _one_line(_learnact("compare", path, "--reference", "relu", cwd=tmp_path))
    assert line.startswith("learnact: error: ") and expected in line, line


@pytest.mark.parametrize(("args", "expected"), [
    ((), "pass --reference VARIANT, one of: relu, gated, swish"),
    (("-r", "relu", "-m", "epochs"), "pass --higher-is-better epochs or --lower-is-better epochs"),
    (("-r", "relu", "--lower-is-better", "accuracy"),
     "'accuracy' is a known quantity where higher is better; drop the --lower-is-better accuracy option"),
    (("-r", "relu", "--higher-is-better", "nope"), "--higher-is-better 'nope'"),
    (("-r", "rleu",), "unknown reference 'rleu'"),
])
def test_bad_options_are_one_line_with_exit_2(runs_csv, tmp_path, args, expected):
    line = _one_line(_learnact("compare", runs_csv, *args, cwd=tmp_path))
    assert expected in line, line


def test_a_metric_column_given_twice_is_compared_once(runs_csv, tmp_path):
    out = tmp_path / "cmp.csv"
    proc = _learnact("compare", runs_csv, "--reference", "relu", "-m", "accuracy", "-m", "accuracy", "--csv", out,
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert list(pd.read_csv(out)["metric"]) == ["accuracy", "accuracy"]  # gated and swish, once each
    assert sum(line.startswith("│ accuracy") for line in proc.stdout.splitlines()) == 2, proc.stdout


@pytest.fixture(scope="module")
def study_with_diverged(tmp_path_factory):
    from learnact.experiment import run_study, study_from_dict

    config = {**TINY, "variants": [*TINY["variants"],
                                    {"name": "blown", "kind": "fixed", "activation": "relu", "lr": 1e30}]}
    study = tmp_path_factory.mktemp("tidy") / "study"
    run_study(study_from_dict(config), study)
    write_results(study)  # what `learnact run` writes after training
    return study


def test_a_copied_results_csv_compares_as_its_study_does(study_with_diverged, tmp_path):
    """results.csv is one row per run and quantity, not per run: copied out of its study (sent to a colleague,
    the study deleted), it is read as the study's own table, diverged runs included, and gives the same
    comparison. It had been read as a CSV of runs and refused for blanks in its descriptive columns."""
    copy = tmp_path / "copy.csv"
    copy.write_bytes((study_with_diverged / "results.csv").read_bytes())
    from_study, from_copy = tmp_path / "study_cmp.csv", tmp_path / "copy_cmp.csv"
    a = _learnact("compare", study_with_diverged, "-r", "baseline_tanh", "--csv", from_study, cwd=tmp_path)
    b = _learnact("compare", copy, "-r", "baseline_tanh", "--csv", from_copy, cwd=tmp_path)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    x, y = pd.read_csv(from_study), pd.read_csv(from_copy)
    assert "blown" in set(x["variant"]) and x.equals(y)
    assert "1 diverged run" in " ".join(b.stdout.split()) or "diverged" in b.stdout
    assert "(best fixed baseline by ROC-AUC)" in _learnact("compare", copy, cwd=tmp_path).stdout


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.assign(status=t["status"].where(t.index != 4, "done")), "status 'done' at data row 5"),
    (lambda t: t.assign(value=t["value"].where(~((t["status"] == "finished") & (t["metric"] == "train_time_s")),
                                               np.inf)), "has train_time_s = inf at data row"),
    (lambda t: t.assign(value=t["value"].where(~((t["status"] == "finished") & (t["metric"] == "accuracy")),
                                               97.2)), "has accuracy = 97.2 at data row"),
    (lambda t: t.assign(value=t["value"].where(t["metric"] != "n_params", -5)), "n_params lies in [0, inf]"),
    (lambda t: pd.concat([t, t[t["variant"] == "baseline_relu"].assign(run_id=lambda f: f["run_id"] + "_b")],
                         ignore_index=True), "has 2 runs of variant 'baseline_relu', seed 1"),
    (lambda t: pd.concat([t, t.iloc[[0]]], ignore_index=True), "twice"),
    (lambda t: t.assign(seed=t["seed"].where(t.index != 0, t["seed"].iloc[0] + 1)),
     "disagree on 'seed'"),
    (lambda t: t.assign(value=t["value"].astype(object).where(t.index != 2, "0.9O")),
     "column 'value' holds '0.9O' at data row 3 (line 4 of the file), not a number"),
    (lambda t: t.drop(columns="status"), "lacks columns ['status']"),
])
def test_a_tampered_results_csv_is_refused_naming_the_row(study_with_diverged, tmp_path, edit, expected):
    from learnact.evaluation.results import read_results_csv
    from learnact.exceptions import DataError

    table = pd.read_csv(study_with_diverged / "results.csv", keep_default_na=False, na_values=["", "nan"])
    path = tmp_path / "tampered.csv"
    edit(table).to_csv(path, index=False)
    with pytest.raises(DataError, match="tampered.csv") as caught:
        read_results_csv(path)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_tampered_results_csv_is_one_line_at_the_console(study_with_diverged, tmp_path):
    table = pd.read_csv(study_with_diverged / "results.csv", keep_default_na=False, na_values=["", "nan"])
    path = tmp_path / "tampered.csv"
    table.assign(status=table["status"].where(table.index != 4, "done")).to_csv(path, index=False)
    line = _one_line(_learnact("compare", path, "-r", "baseline_tanh", cwd=tmp_path))
    assert line.startswith("learnact: error: ") and "status 'done' at data row 5" in line, line


def test_csv_output_onto_the_file_compared_is_refused_and_the_file_kept(runs_csv, tmp_path):
    """`compare runs.csv --csv runs.csv` had replaced the user's runs with the comparison table, exit 0."""
    before = runs_csv.read_bytes()
    line = _one_line(_learnact("compare", runs_csv, "-r", "relu", "--csv", f"./{runs_csv.name}", cwd=tmp_path))
    assert "is the file being compared, which is never replaced" in line
    assert runs_csv.read_bytes() == before


def test_variants_named_like_missing_values_are_names(tmp_path):
    """pandas reads None, NA, null and nan as missing: a variant of that name had been refused as a blank."""
    from learnact.evaluation.user_results import read_runs_csv
    from learnact.exceptions import DataError

    csv_path = tmp_path / "runs.csv"
    csv_path.write_text("variant,seed,accuracy\nNone,1,0.9\nNA,1,0.8\nnull,1,0.7\nnan,1,0.6\nrelu,1,0.85\n")
    assert list(dict.fromkeys(read_runs_csv(csv_path).tidy["variant"])) == ["None", "NA", "null", "nan", "relu"]
    csv_path.write_text("variant,seed,accuracy\n,1,0.9\nrelu,1,0.85\n")
    with pytest.raises(DataError, match=r"missing values in columns \['variant'\]"):
        read_runs_csv(csv_path)


def test_a_quantity_with_no_better_direction_has_no_wins_unless_declared(tmp_path):
    """best_epoch is a registry quantity with no better direction: declaring one had been refused with a message
    naming the other flag, and without one the table counted a later stop as a win."""
    path = tmp_path / "be.csv"
    path.write_text("variant,seed,best_epoch\nref,1,5\nref,2,6\na,1,7\na,2,9\n")
    undirected = _learnact("compare", path, "-r", "ref", cwd=tmp_path)
    assert undirected.returncode == 0, undirected.stderr
    row = next(line for line in undirected.stdout.splitlines() if "best_epoch" in line and "│ a " in line)
    assert row.split("│")[-3].strip() == "-" and "+2.5" in row
    assert "'-' for a quantity with no better direction" in " ".join(undirected.stdout.split())
    declared = _learnact("compare", path, "-r", "ref", "--lower-is-better", "best_epoch", cwd=tmp_path)
    assert declared.returncode == 0, declared.stderr
    row = next(line for line in declared.stdout.splitlines() if "best_epoch" in line and "│ a " in line)
    assert row.split("│")[-3].strip() == "0/0/2"  # later on both seeds: two losses where lower is better


def test_ties_are_relative_to_the_values_and_small_differences_keep_their_digits(tmp_path):
    """An absolute tie tolerance of 1e-12 had tied every seed of an error of order 1e-13 that the variant halves
    on every seed (W/T/L 0/5/0, Wilcoxon p 1, beside a t-test p of 0.0006); and a fixed two-decimal format had
    shown a difference of 0.004 as 0.00."""
    path = tmp_path / "tiny.csv"
    ref = [5e-13, 6e-13, 7e-13, 8e-13, 9e-13]
    rows = [("ref", s, v) for s, v in enumerate(ref, 1)] + [("a", s, v / 2) for s, v in enumerate(ref, 1)]
    pd.DataFrame(rows, columns=["variant", "seed", "err"]).to_csv(path, index=False)
    out = tmp_path / "cmp.csv"
    proc = _learnact("compare", path, "-r", "ref", "--lower-is-better", "err", "--csv", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = pd.read_csv(out).iloc[0]
    assert (row["wins"], row["ties"], row["losses"]) == (5, 0, 0)
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(np.array(ref) / 2 - np.array(ref)).pvalue)
    times = tmp_path / "times.csv"
    pd.DataFrame({"variant": ["ref"] * 3 + ["a"] * 3, "seed": [1, 2, 3] * 2,
                  "train_time_s": [0.010, 0.011, 0.012, 0.014, 0.015, 0.016]}).to_csv(times, index=False)
    proc = _learnact("compare", times, "-r", "ref", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "train_time_s" in line and "│ a " in line)
    assert "+0.004" in line and "0.00 " not in line and "-0.00" not in line, line


def test_one_variant_is_one_line(tmp_path):
    """A file (or study) with one variant had printed an empty table, exit 0."""
    path = tmp_path / "one.csv"
    path.write_text("variant,seed,accuracy\nref,1,0.9\nref,2,0.8\n")
    line = _one_line(_learnact("compare", path, "-r", "ref", cwd=tmp_path))
    assert "has one variant (ref); compare needs a second variant" in line


def test_a_dataset_column_is_named_for_what_it_is(tmp_path):
    """A `dataset` column had been taken for a metric column of text ("encode them as numbers first"), and
    following that advice led to "keep one row per run"."""
    from learnact.evaluation.user_results import read_runs_csv
    from learnact.exceptions import DataError

    path = tmp_path / "runs.csv"
    RUNS.assign(dataset="iris").to_csv(path, index=False)
    assert "dataset" not in read_runs_csv(path).metrics  # one data set: a label, not a metric
    RUNS.assign(dataset=["iris", "wine"] * 6).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"has a 'dataset' column with 2 data sets \(iris, wine\); a CSV of runs is "
                                        r"compared on one data set"):
        read_runs_csv(path)


def test_the_same_difference_on_every_seed_has_no_t_test(tmp_path):
    """Two or three seeds that each gain the same 0.01 had given t = inf, p = 0 and a zero-width interval, bold as
    Holm-significant: certainty from a spread the test never saw."""
    path = tmp_path / "zs.csv"
    path.write_text("variant,seed,accuracy\nref,1,0.90\nref,2,0.80\nref,3,0.85\na,1,0.91\na,2,0.81\na,3,0.86\n")
    out = tmp_path / "cmp.csv"
    proc = _learnact("compare", path, "-r", "ref", "--csv", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = pd.read_csv(out).iloc[0]
    assert np.isnan(row["p_value"]) and np.isnan(row["p_holm"]) and np.isnan(row["ci_low"])
    assert row["status"] == "no spread over seeds: no t-test" and row["wilcoxon_p"] == pytest.approx(0.25)
    line = next(line for line in proc.stdout.splitlines() if "│ a " in line)
    assert "+0.0100 │      - │" in line and "nan" not in line, line
