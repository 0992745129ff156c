"""Suites: one study over several data sets, through the real console script, and the analysis across them."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from console import run_learnact as _learnact
from learnact.evaluation import tidy_results
from learnact.evaluation.suite import is_suite, suite_analysis, suite_scores
from learnact.evaluation.suite_statistics import average_ranks
from learnact.experiment.grid import study_from_dict, study_to_dict

SUITE = textwrap.dedent("""
    name = "tiny-suite"
    seeds = [1, 2]
    reference = "tanh"
    [data]
    datasets = ["iris", "xor", {dataset = "wine", test_size = 0.3}]
    [backbone]
    hidden = [8]
    [train]
    max_epochs = 15
    [[variants]]
    name = "tanh"
    kind = "fixed"
    activation = "tanh"
    [[variants]]
    name = "relu"
    kind = "fixed"
    activation = "relu"
    [[variants]]
    name = "gated"
    kind = "gated"
    candidates = ["relu", "tanh"]
""")


def test_a_suite_spells_out_its_data_sets_and_names_them_in_run_ids():
    import tomllib

    study = study_from_dict(tomllib.loads(SUITE))
    assert [d.dataset for d in study.datasets] == ["iris", "xor", "wine"]
    assert [d.test_size for d in study.datasets] == [0.25, 0.25, 0.3]  # an entry's own settings win
    runs = study.runs()
    assert len(runs) == 3 * 3 * 2
    assert runs[0].run_id.startswith("tanh__iris__s1__") and runs[-1].run_id.startswith("gated__wine__s2__")
    assert len({r.run_id for r in runs}) == len(runs)
    again = study_from_dict(study_to_dict(study))  # study.json round trip: the same runs
    assert [r.run_id for r in again.runs()] == [r.run_id for r in runs]


@pytest.mark.parametrize("data, problem", [
    ({"datasets": ["iris", "iris"]}, "listed once"),
    ({"datasets": []}, "non-empty list"),
    ({"datasets": [{"test_size": 0.3}]}, "data.datasets[0]"),
    ({"datasets": ["iris", "nope"]}, "invalid config: data.datasets[1].dataset: unknown dataset 'nope'"),
    ({"datasets": [{"dataset": "iris", "test_size": 3}, "wine"]},
     "invalid config: data.datasets[0].test_size: must be in (0, 1), got 3"),  # once, not also as data.test_size
    ({"datasets": ["iris"], "dataset": "wine"}, "remove data.dataset"),
    ({"datasets": ["nope.csv"]}, "data.datasets[0]: CSV file 'nope.csv' does not exist"),
])
def test_bad_suites_are_refused_with_the_field(data, problem):
    from learnact.exceptions import ConfigError

    with pytest.raises(ConfigError, match=re.escape(problem)):
        study_from_dict({"name": "s", "data": data, "variants": [{"name": "t", "kind": "fixed"}]})


def test_a_top_level_datasets_key_is_sent_under_data():
    """The study model's own field name, written at the top level of a file, had been validated as the suite's
    entries and reported as `data.datasets[0]: expected a table, got 'iris'`, a key the user never wrote."""
    from learnact.exceptions import ConfigError

    with pytest.raises(ConfigError, match=re.escape("datasets: a suite lists its data sets under [data]")) as caught:
        study_from_dict({"name": "s", "datasets": ["iris", "wine"], "variants": [{"name": "t", "kind": "fixed"}]})
    assert "data.datasets" not in str(caught.value).split("under [data]")[0]


def test_single_data_set_run_ids_are_unchanged():
    study = study_from_dict({"name": "s", "seeds": [1], "variants": [{"name": "t", "kind": "fixed",
                                                                      "activation": "tanh"}]})
    assert study.runs()[0].run_id == "t__s1__" + study.runs()[0].fingerprint()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    (root / "suite.toml").write_text(SUITE)
    proc = _learnact("run", "suite.toml", "--out", "study", cwd=root)
    assert proc.returncode == 0, proc.stderr
    (root / "stdout.txt").write_text(proc.stdout)
    return root


def test_the_suite_trains_every_data_set_and_prints_the_summary(suite: Path):
    out = (suite / "stdout.txt").read_text()
    assert "3 variants x 2 seeds x 3 data sets" in out and "avg rank" in out
    for name in ("iris", "xor", "wine"):
        assert name in out
    board = pd.read_csv(suite / "study" / "leaderboard.csv")
    assert list(board.columns[:2]) == ["dataset", "variant"]
    assert sorted(board["dataset"].unique()) == ["iris", "wine", "xor"] and (board["n_seeds"] == 2).all()
    # each data set's leaderboard equals the one of a study of that data set alone (the same runs)
    tidy = tidy_results(suite / "study")
    assert is_suite(tidy)
    runs, means = suite_scores(tidy, "accuracy")
    for d in ("iris", "xor", "wine"):
        row = board[(board["dataset"] == d) & (board["variant"] == "relu")].iloc[0]
        assert row["accuracy_mean"] == pytest.approx(runs[(runs.dataset == d) & (runs.variant == "relu")].value.mean())
        assert means.loc[d, "relu"] == pytest.approx(row["accuracy_mean"])


def test_the_suite_report_has_the_cd_diagram_the_poi_matrix_and_a_section_per_data_set(suite: Path):
    report = suite / "study" / "report"
    for fig in ("cd_diagram", "probability_of_improvement", "iqm", "performance_profiles"):
        assert (report / "figures" / f"{fig}.png").stat().st_size > 5000, fig
    index = (report / "index.md").read_text()
    assert "Critical-difference diagram" in index and "Probability of improvement" in index
    for d in ("iris", "xor", "wine"):
        sub = (report / d / "index.md").read_text()
        assert f"tiny-suite ({d})" in sub and "(figures/leaderboard.png)" in sub.replace('"', "(").replace(">", ")")
        sub_board = pd.read_csv(report / d / "tables" / "leaderboard.csv")
        assert len(sub_board) == 3  # that data set's variants only
    means = pd.read_csv(report / "tables" / "suite_means.csv").set_index("variant")
    tidy = tidy_results(suite / "study")
    _, by_hand = suite_scores(tidy, "accuracy")
    for v in ("tanh", "relu", "gated"):
        for d in ("iris", "xor", "wine"):
            assert means.loc[v, d] == pytest.approx(by_hand.loc[d, v])
    ranks = average_ranks(by_hand)
    assert means["average_rank"].to_dict() == pytest.approx(ranks.to_dict())
    html = (report / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    # each data set's report is linked (the table held its path as text, and the text said the reports
    # "follow the suite section", where nothing followed), in Markdown to its index.md, in HTML to its index.html
    for d in ("iris", "xor", "wine"):
        assert f"[{d}/]({d}/index.md)" in index and f'<a href="{d}/index.html">{d}/</a>' in html
        assert (report / d / "index.md").is_file() and (report / d / "index.html").is_file()
    assert "follows the suite section" not in index
    for d in ("iris", "xor", "wine"):  # and each data set's report links back to the suite's (it was plain text)
        assert "[the suite report, one folder up](../index.md)" in (report / d / "index.md").read_text()
        assert '<a href="../index.html">the suite report, one folder up</a>' in (report / d / "index.html").read_text()


def test_resuming_a_suite_trains_nothing(suite: Path):
    proc = _learnact("run", "suite.toml", "--out", "study", "--no-report", cwd=suite)
    assert proc.returncode == 0, proc.stderr
    assert "18 runs, 18 already finished" in proc.stderr
    assert "0 trained, 18 already done" in " ".join(proc.stdout.split())


def _fake_tidy(means: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = []
    for d, by_variant in means.items():
        for v, values in by_variant.items():
            for s, x in enumerate(values):
                rows.append({"run_id": f"{v}__{d}__s{s}", "variant": v, "seed": s, "status": "finished",
                             "dataset": d, "kind": "fixed", "metric": "accuracy", "group": "performance",
                             "value": x})
    tidy = pd.DataFrame(rows)
    tidy.attrs["reference"] = "a"
    return tidy


def test_suite_analysis_by_hand():
    tidy = _fake_tidy({
        "d1": {"a": [0.8, 0.9], "b": [0.7, 0.7], "c": [0.95, 0.95]},
        "d2": {"a": [0.6, 0.6], "b": [0.65, 0.65], "c": [0.9, 0.9]},
        "d3": {"a": [0.5, 0.5], "b": [0.5, 0.5], "c": [0.7, 0.8]},
    })
    a = suite_analysis(tidy, "accuracy", rope=0.01, reps=200)
    assert a.means.loc["d1", "a"] == pytest.approx(0.85)
    # ranks per data set: d1 c>a>b, d2 c>b>a, d3 c > a=b -> a (2+3+2.5)/3, b (3+2+2.5)/3, c 1
    assert a.ranks.to_dict() == pytest.approx({"c": 1.0, "a": 7.5 / 3, "b": 7.5 / 3})
    wtl = a.wtl.set_index("variant")
    assert wtl.loc["b"].tolist() == [1, 1, 1] and wtl.loc["c"].tolist() == [3, 0, 0]
    # c beats a on every run of every data set: P(c > a) = 1, and the reverse 0
    assert a.poi.loc["c", "a"] == 1.0 and a.poi.loc["a", "c"] == 0.0
    assert a.iqm.set_index("variant").loc["c", "iqm"] == pytest.approx(1.0)  # c is the best run everywhere
    assert np.allclose(a.profiles.loc[0.0].to_numpy() <= 1, True)


def test_suite_analysis_needs_two_complete_data_sets():
    tidy = _fake_tidy({"d1": {"a": [0.8], "b": [0.7]}, "d2": {"a": [0.6]}})
    with pytest.raises(ValueError, match="at least 2 data sets where every variant finished"):
        suite_analysis(tidy)


def test_the_study_file_of_a_suite_is_written_as_a_suite(suite: Path):
    data = json.loads((suite / "study" / "study.json").read_text())["data"]
    assert [d["dataset"] for d in data["datasets"]] == ["iris", "xor", "wine"]


def test_the_terminal_summary_and_the_report_rank_alike(suite: Path):
    """One source: the printed average ranks and best marks are the report's suite table's."""
    means = pd.read_csv(suite / "study" / "report" / "tables" / "suite_means.csv").set_index("variant")
    lines = (suite / "stdout.txt").read_text().splitlines()
    shown = {}
    for line in lines:
        parts = line.split()
        if parts and parts[0] in means.index and len(parts) == 2 + 3:
            shown[parts[0]] = parts[1:]
    assert set(shown) == set(means.index)
    for v, cells in shown.items():
        assert float(cells[0]) == pytest.approx(means.loc[v, "average_rank"], abs=0.005)
        for d, cell in zip(("iris", "xor", "wine"), cells[1:], strict=True):
            assert float(cell.rstrip("*")) == pytest.approx(means.loc[v, d], abs=6e-5)
            assert cell.endswith("*") == (means.loc[v, d] == means[d].max())


def test_equal_scores_summed_in_another_order_tie():
    rows = []
    for variant, accs in (("a", [0.1, 0.2, 0.3]), ("b", [0.3, 0.2, 0.1])):
        for d in ("d1", "d2"):
            for seed, acc in enumerate(accs):
                rows.append({"dataset": d, "variant": variant, "seed": seed, "metric": "accuracy", "split": "test",
                             "value": acc, "status": "finished"})
    tidy = pd.DataFrame(rows)
    _, means = suite_scores(tidy, "accuracy")
    assert (means["a"] == means["b"]).all()  # 0.1+0.2+0.3 != 0.3+0.2+0.1 in floating point
    assert average_ranks(means).to_dict() == {"a": 1.5, "b": 1.5}


def test_compare_on_a_suite_prints_the_report_tables_across_data_sets(suite: Path):
    proc = _learnact("compare", "study", "--csv", "tests.csv", cwd=suite)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "variants vs tanh (the study's reference) across 3 data sets" in out, out
    assert "Friedman test over 3 data sets" in out
    assert "per data set: learnact compare study --dataset NAME" in out
    report = suite / "study" / "report" / "tables"
    # the CSV: one row per variant, the means table's columns and the tests table's, and the Friedman test
    written = pd.read_csv(suite / "tests.csv").set_index("variant")
    in_report = pd.read_csv(report / "suite_tests.csv").set_index("variant")
    pd.testing.assert_frame_equal(written.loc[in_report.index, in_report.columns], in_report, check_exact=False,
                                  rtol=1e-12)
    means = pd.read_csv(report / "suite_means.csv").set_index("variant")
    pd.testing.assert_frame_equal(written.loc[means.index, [f"mean_{d}" for d in ("iris", "xor", "wine")]]
                                  .set_axis(["iris", "xor", "wine"], axis=1), means[["iris", "xor", "wine"]],
                                  check_exact=False, rtol=1e-12)
    assert written["average_rank"].tolist() == pytest.approx(means["average_rank"].tolist())
    friedman = re.search(r"chi2 = ([\d.]+), p = ([\d.e-]+)", " ".join(out.split()))
    assert friedman and written["friedman_chi2"].iloc[0] == pytest.approx(float(friedman.group(1)), abs=0.005)
    for line in out.splitlines():  # the means table: variant, one mean per data set, avg rank, W/T/L
        parts = line.split()
        if parts and parts[0] in means.index and len(parts) == 1 + 3 + 2:
            assert [float(x) for x in parts[1:4]] == pytest.approx(means.loc[parts[0], ["iris", "xor", "wine"]]
                                                                   .tolist(), abs=6e-5)
            assert float(parts[4]) == pytest.approx(means.loc[parts[0], "average_rank"], abs=0.005)


def test_compare_on_one_data_set_of_a_suite_is_that_data_sets_comparison(suite: Path):
    from learnact.evaluation import paired_comparisons
    from learnact.evaluation.suite import per_dataset

    proc = _learnact("compare", "study", "--dataset", "wine", "--metric", "accuracy", "--csv", "wine.csv", cwd=suite)
    assert proc.returncode == 0, proc.stderr
    assert "study (wine): variants vs tanh" in proc.stdout
    got = pd.read_csv(suite / "wine.csv")
    want = paired_comparisons(per_dataset(tidy_results(suite / "study"))["wine"], "tanh", ("accuracy",))
    np.testing.assert_allclose(got["mean_diff"].to_numpy(float), want["mean_diff"].to_numpy(float))
    assert list(got["variant"]) == list(want["variant"])


@pytest.mark.parametrize(("args", "problem"), [
    (["--dataset", "wines"], "--dataset 'wines' is not a data set of 'study' (did you mean 'wine'?); data sets: "
                             "iris, xor, wine"),
    (["--metric", "nonsense"], "nonsense"),
])
def test_compare_on_a_suite_refuses_bad_options_in_one_line(suite: Path, args, problem):
    proc = _learnact("compare", "study", *args, cwd=suite)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0], proc.stderr


def test_the_suite_summary_prints_bracketed_names_as_written(suite: Path, capsys: pytest.CaptureFixture[str]):
    from learnact.cli.display import print_suite
    from learnact.evaluation import tidy_results

    tidy = tidy_results(suite / "study")
    first = str(tidy["variant"].iloc[0])
    tidy["variant"] = tidy["variant"].replace({first: "[bold]a[v2]"})
    print_suite(tidy, "suite [draft]")
    out = capsys.readouterr().out
    assert "suite [draft]" in out and "[bold]a[v2]" in out, out


MIXED = textwrap.dedent("""
    name = "mixed"
    seeds = [1, 2]
    reference = "relu"
    [data]
    datasets = ["iris", "diabetes", "wine", "formula_product"]
    [backbone]
    hidden = [4]
    [train]
    max_epochs = 3
    [[variants]]
    name = "{activation}"
    kind = "fixed"
    activation = ["relu", "tanh"]
    [[variants]]
    name = "gated"
    kind = "gated"
    candidates = ["relu", "tanh"]
""")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A suite of two classification and two regression data sets, trained for 3 epochs (seconds)."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "mixed.toml").write_text(MIXED)
    (root / "one_each.toml").write_text(MIXED.replace('"iris", "diabetes", "wine", "formula_product"',
                                                      '"iris", "diabetes"'))
    for name in ("mixed", "one_each"):
        proc = _learnact("run", f"{name}.toml", "--out", name, "--no-report", "-q", cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.parametrize(("metric", "compared", "left_out"), [
    ("r2", ["diabetes", "formula_product"], "Left out (no r2: classification data sets): iris, wine."),
    ("accuracy", ["iris", "wine"], "Left out (no accuracy: regression data sets): diabetes, formula_product."),
])
def test_compare_by_a_metric_of_one_task_ranks_the_data_sets_of_that_task(mixed: Path, metric, compared, left_out):
    # this was `learnact: internal error (KeyError: 'iris')`: data sets without the metric were looked up
    proc = _learnact("compare", "mixed", "-m", metric, "--csv", f"{metric}.csv", cwd=mixed)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert f"variants vs relu (the study's reference) across 2 data sets ({metric})" in out and left_out in out, out
    header = next(line.split() for line in proc.stdout.splitlines() if line.startswith("variant "))
    assert header == ["variant", *compared, "avg", "rank", "W/T/L"]
    tidy = tidy_results(mixed / "mixed")
    a = suite_analysis(tidy, metric)
    assert list(a.means.index) == compared and a.without_metric == {
        d: "classification" if d in ("iris", "wine") else "regression" for d in ("iris", "diabetes", "wine",
                                                                                 "formula_product")
        if d not in compared}
    assert list(pd.read_csv(mixed / f"{metric}.csv")["metric"].unique()) == [metric]


@pytest.mark.parametrize(("metric", "problem"), [
    ("accuracy", "a suite comparison of accuracy needs at least 2 data sets that record it; only iris does "
                 "(classification), diabetes records r2 instead (regression); leave the metric out"),
    ("r2", "a suite comparison of r2 needs at least 2 data sets that record it; only diabetes does (regression), "
           "iris records accuracy instead (classification); leave the metric out"),
])
def test_compare_by_a_metric_only_one_data_set_records_names_the_data_sets_and_their_metric(mixed: Path, metric,
                                                                                            problem):
    # every variant finished: the old message blamed unfinished variants
    proc = _learnact("compare", "one_each", "-m", metric, cwd=mixed)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and "where every variant finished" not in lines[0], proc.stderr
    # without -m each data set is ranked by its own primary score
    assert _learnact("compare", "one_each", cwd=mixed).returncode == 0


def test_a_data_set_left_out_of_a_suite_analysis_is_listed_without_a_best_variant():
    from learnact.reporting.suite_report import suite_tables

    tidy = _fake_tidy({"d1": {"a": [0.8], "b": [0.7]}, "d2": {"a": [0.6], "b": [0.9]}, "d3": {"a": [0.5]}})
    a = suite_analysis(tidy, "accuracy", reps=20)
    assert a.dropped == ["d3"]
    means, _, listing = suite_tables(a, {})  # the listing looked d3 up in the complete means: KeyError
    assert [[c.text for c in row[:2]] for row in listing.rows] == [["d1", "a"], ["d2", "b"], ["d3", "-"]]
    assert "Left out (a variant had no finished run there): d3." in means.notes


def test_a_suite_analysis_names_why_a_data_set_is_left_out():
    tidy = _fake_tidy({"d1": {"a": [0.8], "b": [0.7]}, "d2": {"a": [0.6], "b": [0.9]}, "d3": {"a": [0.5]}})
    tidy = tidy[tidy["dataset"] != "d2"]
    with pytest.raises(ValueError, match="got 1 \\(d1\\): on d3, b finished no run$"):
        suite_analysis(tidy, "accuracy")
    with pytest.raises(ValueError, match="^no run records metric 'rmse'; recorded: accuracy$"):
        suite_analysis(tidy, "rmse")  # a known metric of the other task


def test_compare_by_a_cost_every_variant_ties_on_is_a_comparison_without_warnings(mixed: Path):
    # 3 epochs and no early stop: epochs_run ties every variant on every data set (as train_time_s does for the
    # members of one stack, who share its time); Friedman's test was NaN with a RuntimeWarning from scipy
    proc = _learnact("compare", "mixed", "-m", "epochs_run", cwd=mixed)
    assert proc.returncode == 0 and "warning" not in proc.stderr.lower(), proc.stderr
    out = " ".join(proc.stdout.split())
    assert "variants vs relu (the study's reference) across 4 data sets (epochs_run)" in out
    assert "chi2 = 0.00, p = 1 (Iman-Davenport F = 0.00, p = 1)" in out and "nan" not in out, out


def test_a_metric_given_twice_to_a_suite_compare_is_compared_once(mixed: Path):
    proc = _learnact("compare", "mixed", "-m", "r2", "-m", "r2", "--csv", "twice.csv", cwd=mixed)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("variants vs relu (the study's reference) across 2 data sets (r2)") == 1, proc.stdout
    written = pd.read_csv(mixed / "twice.csv")
    assert sorted(written["variant"]) == ["gated", "relu", "tanh"] and set(written["metric"]) == {"r2"}


def _suite_tidy(means: dict[str, dict[str, list[float]]], kinds: dict[str, str],
                diverged: tuple[tuple[str, str, int], ...] = ()) -> pd.DataFrame:
    """A suite's tidy table: accuracy per (variant, data set) and seed; ``diverged`` runs (variant, data set,
    seed) with NaN accuracy."""
    rows = []
    for variant, per_dataset in means.items():
        for dataset, values in per_dataset.items():
            for seed, value in enumerate(values, 1):
                bad = (variant, dataset, seed) in diverged
                rows.append({"run_id": f"{variant}__{dataset}__s{seed}", "dataset": dataset, "variant": variant,
                             "seed": seed, "kind": kinds[variant], "status": "diverged" if bad else "finished",
                             "metric": "accuracy", "group": "performance", "value": np.nan if bad else value})
    return pd.DataFrame(rows)


def test_a_suite_without_a_reference_compares_with_its_best_ranked_fixed_baseline():
    """The suite's default reference had been its first variant (a learned one, here), while each data set's
    comparison took the best fixed baseline: two references for one study, neither named."""
    values = {"gated": {"a": [0.9, 0.9], "b": [0.8, 0.8], "c": [0.7, 0.7]},
              "relu": {"a": [0.6, 0.6], "b": [0.5, 0.5], "c": [0.4, 0.4]},
              "tanh": {"a": [0.7, 0.7], "b": [0.6, 0.6], "c": [0.5, 0.5]}}
    kinds = {"gated": "gated", "relu": "fixed", "tanh": "fixed"}
    a = suite_analysis(_suite_tidy(values, kinds), reps=10)
    assert (a.reference, a.reference_how) == ("tanh", "best fixed baseline by average rank")
    a = suite_analysis(_suite_tidy(values, dict.fromkeys(kinds, "gated")), reps=10)
    assert (a.reference, a.reference_how) == ("gated", "best variant by average rank")
    tidy = _suite_tidy(values, kinds)
    tidy.attrs["reference"] = "relu"
    assert suite_analysis(tidy, reps=10).reference == "relu"
    assert suite_analysis(tidy, reference="gated", reps=10).reference == "gated"


def test_a_suite_says_which_runs_diverged_on_which_data_sets():
    """A variant's mean on a data set can rest on one surviving seed: the suite's tables had said nothing of the
    runs left out, and `learnact run` named seeds without their data sets ("seeds 2, 3, 3")."""
    from learnact.cli.display import diverged_lines
    from learnact.reporting.suite_report import suite_tables

    values = {"blow": {"a": [0.9, 0.1, 0.2], "b": [0.8, 0.1, 0.3], "c": [0.7, 0.7, 0.7]},
              "relu": {"a": [0.6] * 3, "b": [0.5] * 3, "c": [0.4] * 3},
              "tanh": {"a": [0.7] * 3, "b": [0.6] * 3, "c": [0.5] * 3}}
    kinds = {"blow": "fixed", "relu": "fixed", "tanh": "fixed"}
    tidy = _suite_tidy(values, kinds, diverged=(("blow", "a", 2), ("blow", "a", 3), ("blow", "b", 3)))
    a = suite_analysis(tidy, reps=10)
    assert a.excluded.startswith("3 diverged runs excluded from the means (blow: 3 (a 2, b 1))")
    means, _, _ = suite_tables(a, {})
    assert a.excluded in means.notes
    assert a.means.loc["a", "blow"] == pytest.approx(0.9)  # one seed left on a: the note is why it is best there

    import learnact.store as store

    def read_metrics(folder):
        return {"diverged_epoch": 1, "diverged_reason": "non-finite training loss"}

    original = store.read_metrics
    store.read_metrics = read_metrics
    try:
        lines = diverged_lines(tidy, Path("."))
    finally:
        store.read_metrics = original
    assert lines == ["blow: seeds 2, 3 on a; 3 on b diverged (epoch 1: non-finite training loss)"]

    def two_causes(folder):  # each seed's own reason: three seeds and two reasons had shared one list
        late = folder.name.endswith("s3")
        return {"diverged_epoch": 2 if late else 1,
                "diverged_reason": "non-finite validation loss" if late else "non-finite training loss"}

    store.read_metrics = two_causes
    try:
        lines = diverged_lines(tidy[tidy["dataset"] == "a"], Path("."))
    finally:
        store.read_metrics = original
    assert lines == ["blow: seed 2 diverged (epoch 1: non-finite training loss); seed 3 (epoch 2: non-finite "
                     "validation loss)"]


def test_a_wide_suite_table_keeps_every_column_off_a_terminal():
    """At 120 columns rich had dropped the average rank and W/T/L columns of a 9-data-set suite, and cut digits
    (0.0729 shown as 0.07), with no sign of it."""
    datasets = [f"data_set_{i}" for i in range(12)]
    values = {v: {d: [0.5 + 0.01 * i + 0.001 * j, 0.5 + 0.01 * i + 0.001 * j] for j, d in enumerate(datasets)}
              for i, v in enumerate(["adaptive_entropy_T0.7_lam0.01", "baseline_relu", "baseline_tanh"])}
    tidy = _suite_tidy(values, {"adaptive_entropy_T0.7_lam0.01": "gated", "baseline_relu": "fixed",
                                "baseline_tanh": "fixed"})
    code = ("import pandas as pd, sys; from learnact.evaluation.suite import suite_analysis; "
            "from learnact.reporting.suite_report import suite_tables; "
            "from learnact.cli.display import print_report_table; "
            "tidy = pd.read_pickle(sys.argv[1]); means, tests, _ = suite_tables(suite_analysis(tidy, reps=10), {}); "
            "print_report_table(means, 'means')")
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tidy.pkl"
        tidy.to_pickle(path)
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, "COLUMNS": "120"}).stdout
    header = next(line for line in out.splitlines() if line.startswith("variant"))
    assert header.split()[-3:] == ["avg", "rank", "W/T/L"] and all(d in header for d in datasets)
    row = next(line for line in out.splitlines() if line.startswith("baseline_relu")).split()
    assert row[1:13] == [f"{0.51 + 0.001 * j:.4f}" for j in range(12)]  # every value in full


def test_the_cd_diagram_sets_each_label_beyond_its_line():
    """The x axis runs right to left, and labels aligned towards it had lain over their own connector lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from learnact.reporting.fig_suite import cd_diagram_figure

    values = {v: {d: [0.5 + 0.1 * i + 0.01 * j] * 2 for j, d in enumerate("abcd")}
              for i, v in enumerate(["w", "x", "y", "z", "zz"])}
    fig, _ = cd_diagram_figure(suite_analysis(_suite_tidy(values, dict.fromkeys(values, "fixed")), reps=10))
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if "(" in t.get_text()]
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 3]  # rank -> down -> out to the side
    assert len(labels) == len(lines) == 5
    for text, line in zip(labels, lines, strict=True):
        box = text.get_window_extent(renderer)
        (x0, _), (x1, _) = ax.transData.transform([(line.get_xdata()[1], 0), (line.get_xdata()[2], 0)])
        low, high = min(x0, x1), max(x0, x1)
        assert box.x1 <= low + 1 or box.x0 >= high - 1, (text.get_text(), box, low, high)


def test_a_report_of_a_data_set_the_suite_lacks_names_the_data_sets(suite: Path):
    """build_report(dataset='irsi') had said the study has no finished runs and should be run first."""
    from learnact.reporting import build_report

    with pytest.raises(ValueError, match=re.escape("dataset 'irsi' is not a data set of") + r".*did you mean "
                                         r"'iris'\?\); data sets: iris, xor, wine"):
        build_report(suite / "study", dataset="irsi")


def test_compare_leaves_a_variant_that_never_finished_out_of_the_ranking_as_the_report_does(capsys):
    """compare had refused the whole suite ("needs at least 2 data sets where every variant finished; got 0")
    where the report leaves the variant out with a note."""
    from learnact.cli.compare_cmd import _compare_suite

    nan = float("nan")
    values = {"tanh": {"a": [0.8, 0.9], "b": [0.6, 0.7], "c": [0.5, 0.5]},
              "relu": {"a": [0.7, 0.7], "b": [0.9, 0.8], "c": [0.6, 0.6]},
              "sig": {"a": [0.6, 0.6], "b": [0.5, 0.5], "c": [0.4, 0.4]},
              "boom": {"a": [nan, nan], "b": [nan, nan], "c": [0.3, nan]}}
    tidy = _suite_tidy(values, dict.fromkeys(values, "fixed"), diverged=(
        ("boom", "a", 1), ("boom", "a", 2), ("boom", "b", 1), ("boom", "b", 2), ("boom", "c", 2)))
    _compare_suite(Path("s"), tidy, None, None, None)
    out = " ".join(capsys.readouterr().out.split())
    assert "Left out of the ranking across data sets: boom (no finished run with a finite score on a, b)" in out
    assert "variants vs relu (best fixed baseline by average rank) across 3 data sets" in out
    with pytest.raises(ValueError, match="No ranking across data sets against boom"):  # the CLI: one line, exit 2
        _compare_suite(Path("s"), tidy, "boom", None, None)


def test_the_run_summary_ranks_the_variants_that_finished_everywhere(capsys):
    """One variant with no finished run on a data set had left every average rank '-'."""
    from learnact.cli.display import print_suite

    nan = float("nan")
    values = {"tanh": {"a": [0.8, 0.9], "b": [0.6, 0.7]}, "relu": {"a": [0.7, 0.7], "b": [0.9, 0.8]},
              "boom": {"a": [nan, nan], "b": [nan, nan]}}
    tidy = _suite_tidy(values, dict.fromkeys(values, "fixed"), diverged=(
        ("boom", "a", 1), ("boom", "a", 2), ("boom", "b", 1), ("boom", "b", 2)))
    print_suite(tidy, "s")
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()
            if line.split() and line.split()[0] in values}
    assert rows == {"tanh": "1.50", "relu": "1.50", "boom": "-"}
