"""``learnact compare``: paired comparisons against a reference variant (evaluation stage)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .app import app

if TYPE_CHECKING:  # pandas loads when a command runs, not when the CLI starts
    import pandas as pd

__all__ = ["compare", "format_comparisons"]


def _p(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _signed(value: float, fmt: str) -> str:
    text = f"{value:+{fmt}}"
    return text[1:] if float(text) == 0 else text  # "0.0000", never "-0.0000"


def format_comparisons(table: pd.DataFrame) -> list[dict[str, str]]:
    """Display strings of each comparison row (the terminal table's cells).

    Keys: ``metric, variant, n, mean, diff, ci, t, p, p_holm, wilcoxon_p, wtl, status``.
    """
    out = []
    for _, r in table.iterrows():
        fmt = _row_fmt(_fmt(str(r["metric"])), r)
        if not r["comparable"]:
            out.append({"metric": str(r["metric"]), "variant": str(r["variant"]), "n": str(int(r["n_shared"])),
                        "mean": "-", "diff": "-", "ci": "-", "t": "-", "p": "-", "p_holm": "-",
                        "wilcoxon_p": "-", "wtl": "-", "status": str(r["status"])})
            continue
        out.append({
            "metric": str(r["metric"]), "variant": str(r["variant"]), "n": str(int(r["n_shared"])),
            "mean": f"{r['mean_variant']:{fmt}} vs {r['mean_reference']:{fmt}}",
            "diff": _signed(r["mean_diff"], fmt),
            "ci": (f"[{_signed(r['ci_low'], fmt)}, {_signed(r['ci_high'], fmt)}]"
                   if math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"]) else "-"),
            "t": _signed(r["t_stat"], ".2f"), "p": _p(r["p_value"]), "p_holm": _p(r["p_holm"]),
            "wilcoxon_p": _p(r["wilcoxon_p"]),
            # a quantity with no better direction (best_epoch, a gate's entropy) has no wins: the diff says which way
            "wtl": "-" if r["higher_is_better"] is None else f"{r['wins']}/{r['ties']}/{r['losses']}",
            "status": str(r["status"]),
        })
    return out


def _row_fmt(fmt: str, row: pd.Series) -> str:
    """``fmt``, or three significant digits where its fixed decimals show the row's means with less than two
    (training times of 0.01 s at two decimals: ``diff 0.00, [0.00, 0.00]`` beside t = 0.57). Rounding noise in
    the difference of equal means (1e-17 beside accuracies of 0.97) keeps the metric's format."""
    import re

    fixed = re.fullmatch(r",?\.(\d+)f", fmt)
    if fixed is None:
        return fmt
    smallest = 0.5 * 10.0 ** -int(fixed.group(1))
    means = [abs(float(row[c])) for c in ("mean_variant", "mean_reference")]
    if all(math.isfinite(m) for m in means) and 0 < max(means) < 100 * smallest:
        return ".3g"
    return fmt


def _fmt(metric: str) -> str:
    from ..evaluation import describe_quantity

    try:
        return describe_quantity(metric).fmt
    except ValueError:  # a user's own metric column
        return ".4g"


@app.command()
def compare(
    study: Path = typer.Argument(
        ..., help="Study folder (made by `learnact run`), or a CSV file of your own runs: one row per run with "
                  "columns variant, seed, metric columns, and optionally n_train and n_test; or a study's results.csv, "
                  "copied anywhere."),
    reference: str | None = typer.Option(
        None, "--reference", "-r",
        help="Reference variant (default: the study's reference, else the best fixed baseline by the primary "
             "metric, ROC-AUC or R2 (a suite: by average rank); required with a CSV file of runs)."),
    metric: list[str] | None = typer.Option(
        None, "--metric", "-m",
        help="Metric to compare; repeat for several (default: roc_auc, accuracy, f1; for regression r2, rmse, "
             "mae; with a CSV file, every metric column with a known direction)."),
    csv: Path | None = typer.Option(None, "--csv", help="Also write the full comparison table to this CSV file."),
    higher_is_better: list[str] | None = typer.Option(
        None, "--higher-is-better", help="CSV file only: a metric column of your own where higher is better; "
                                         "repeat for several."),
    lower_is_better: list[str] | None = typer.Option(
        None, "--lower-is-better", help="CSV file only: a metric column of your own where lower is better (e.g. "
                                        "loss); repeat for several."),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Suite only: compare on this data set's seeds, as for a single study "
                                      "(default: the comparison across data sets)."),
) -> None:
    """Compare every variant with a reference on the seeds both finished (corrected t-test, Wilcoxon, Holm).

    For a suite (a study over several data sets) the unit is the data set: average ranks, Friedman's test and
    each variant against the reference (Bayesian signed-rank, Wilcoxon-Holm, Nemenyi, IQM), as in the report's
    suite section; `--dataset NAME` compares on one data set's seeds instead.
    """
    from rich.table import Table

    from ..evaluation import (
        diverged_counts,
        excluded_note,
        paired_comparisons,
        tidy_results,
    )
    from ..evaluation.comparison import reference_choice
    from ..evaluation.metrics import HEADLINE_METRICS, table_task
    from ..exceptions import RunStoreError
    from .display import print_whole
    from .errors import state

    state.writes_to = csv
    if csv is not None:
        _check_csv(csv, study)

    declared = [*(higher_is_better or ()), *(lower_is_better or ())]
    metric = list(dict.fromkeys(metric)) if metric else None  # -m x -m x compares x once, in the order given
    ratio_given: float | None = None
    skipped: tuple[str, ...] = ()
    directions = None
    from ..experiment.grid import STUDY_SUFFIXES

    if study.is_file() and study.suffix.lower() in STUDY_SUFFIXES:
        raise ValueError(f"{str(study)!r} is a study file; compare reads the study folder `learnact run` wrote "
                         f"from it (learnact run {study} --out DIR, then learnact compare DIR) or a CSV file of runs")
    from ..evaluation.results import is_results_csv, read_results_csv

    # a CSV of runs (one row per run); a results table (results.csv, one row per run and quantity, copied out of
    # its study) takes the study's path below
    if (study.is_file() or study.suffix.lower() == ".csv") and not (study.is_file() and is_results_csv(study)):
        from ..evaluation.user_results import read_runs_csv

        runs = read_runs_csv(study, higher_is_better or (), lower_is_better or ())
        tidy = runs.tidy
        names = list(dict.fromkeys(tidy["variant"]))
        if reference is None:
            raise ValueError(f"a CSV file of runs has no reference variant; pass --reference VARIANT, one of: "
                             f"{', '.join(names)}")
        ref, how = reference_choice(tidy, reference)
        for name in metric or ():
            if name in runs.undirected:
                raise ValueError(f"metric {name!r} is not a known quantity, so its direction is unknown; pass "
                                 f"--higher-is-better {name} or --lower-is-better {name}")
        chosen = tuple(metric) if metric else tuple(m for m in runs.metrics if m in runs.directions)
        skipped = () if metric else runs.undirected
        if not chosen:
            raise ValueError(f"no metric column of {str(study)!r} has a known direction "
                             f"({', '.join(runs.undirected)}); declare each with --higher-is-better NAME or "
                             "--lower-is-better NAME")
        directions, ratio_given = runs.directions, runs.test_train_ratio
    else:
        if declared:
            raise ValueError("--higher-is-better and --lower-is-better are for a CSV file of runs; a study's "
                             "metrics (and those of its results.csv) have known directions, drop them")
        if study.is_file():
            tidy = read_results_csv(study)
        else:
            tidy = tidy_results(study)  # a missing folder: the store's RunStoreError says so
            if tidy.empty:
                raise RunStoreError(f"study folder {str(study)!r} has no finished runs; run `learnact run` first")
        from ..evaluation.suite import is_suite, per_dataset

        if dataset is not None:
            parts = per_dataset(tidy)
            if dataset not in parts:
                from .._checks import did_you_mean

                valid = list(parts) or ["(none: not a suite)"]
                raise ValueError(f"--dataset {dataset!r} is not a data set of {str(study)!r}"
                                 f"{did_you_mean(dataset, list(parts))}; data sets: {', '.join(valid)}")
            tidy = parts[dataset]
        elif is_suite(tidy):
            _compare_suite(study, tidy, reference, metric, csv)
            return
        ref, how = reference_choice(tidy, reference)
        chosen = tuple(metric) if metric else HEADLINE_METRICS[table_task(tidy)]
    table = paired_comparisons(tidy, ref, chosen, directions=directions, test_train_ratio=ratio_given)
    if table.empty:  # one variant: the table had printed as headers alone, exit 0
        raise ValueError(f"{str(study)!r} has one variant ({ref}){f' on {dataset}' if dataset else ''}; compare "
                         "needs a second variant to compare it with (add one to the study, or to the file)")
    _write_csv(table, csv)
    ratio = table["test_train_ratio"].dropna()
    title = f"{study.name}{f' ({dataset})' if dataset else ''}: variants vs {ref} ({how})"
    note = excluded_note(diverged_counts(tidy))
    if ratio_given == 0.0:
        test = ("95% CI and t/p from the paired t-test (the file has no n_train/n_test columns: right when every "
                "seed tests on the same rows; add them when the split changes with the seed); ")
    elif len(ratio):
        test = ("95% CI and t/p from the Nadeau-Bengio corrected t-test "
                f"(n_test/n_train = {ratio.iloc[0]:.3f}); ")
    else:
        test = ""
    if skipped:
        note = (f"{note} " if note else "") + (
            f"Not compared (direction unknown): {', '.join(skipped)}; pass --higher-is-better NAME or "
            "--lower-is-better NAME.")
    t = Table(title=title, caption=(
        "diff = variant - reference, paired on shared seeds (seeds both finished); " + test +
        "p_holm: Holm over the variants of one metric; W/T/L: seeds where the variant is better/equal/worse"
        + (" ('-' for a quantity with no better direction)." if table["higher_is_better"].isna().any() else ".")
        + (f" {note}" if note else "")))
    for col, justify in (("metric", "left"), ("variant", "left"), ("n", "right"), ("mean (var vs ref)", "right"),
                         ("diff", "right"), ("95% CI", "right"), ("t", "right"), ("p", "right"),
                         ("p_holm", "right"), ("Wilcoxon p", "right"), ("W/T/L", "right"), ("status", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for cells in format_comparisons(table):
        t.add_row(cells["metric"], cells["variant"], cells["n"], cells["mean"], cells["diff"], cells["ci"],
                  cells["t"], cells["p"], cells["p_holm"], cells["wilcoxon_p"], cells["wtl"], cells["status"])
    print_whole(t, 160)


def _write_csv(table: pd.DataFrame, csv: Path | None) -> None:
    if csv is None:
        return
    from ..store import output_file

    with output_file(csv) as tmp:  # checked before any work (_check_csv)
        table.to_csv(tmp, index=False)


def _check_csv(csv: Path, study: Path) -> None:
    """Refuse a ``--csv`` that is no ``.csv`` file name (a study file, say), the CSV file compared (``study``),
    a folder, part of a study, or in a folder that does not exist (before any work)."""
    from ..store import check_output_path

    try:
        same = csv.exists() and study.is_file() and csv.samefile(study)
    except OSError:
        same = False
    if same:
        raise ValueError(f"--csv {str(csv)!r} is the file being compared, which is never replaced; give the "
                         "comparison a new name")
    if csv.suffix.lower() != ".csv" and csv.is_file():
        raise ValueError(f"--csv {str(csv)!r} is an existing file that does not end in .csv (a study file, say), "
                         f"which is never replaced; give a new name or a .csv file")
    check_output_path(csv, "--csv", "comparison.csv")


def _compare_suite(study: Path, tidy: pd.DataFrame, reference: str | None, metrics: list[str] | None,
                   csv: Path | None) -> None:
    """Print a suite's comparison across data sets: the report's suite tables, from the same analysis."""
    import pandas as pd

    from ..evaluation.suite import datasets_with, suite_analysis, suite_scores
    from ..reporting.suite_report import ranked_analysis, suite_tables
    from .display import plain_console, print_report_table

    frames = []
    chosen: list[str | None] = list(metrics) if metrics else [None]
    for m in chosen:
        left_out = ""
        try:
            analysis = suite_analysis(tidy, m, reference)  # else the study's reference, else the best baseline
        except ValueError:
            # a variant with no finished run on some data set: left out of the ranking, as the report leaves it
            # (compare had refused the whole suite); any other problem is the analysis' own message
            ranked = tidy if m is None else datasets_with(tidy, m)[0]  # its errors are the analysis' own
            scores = suite_scores(ranked, m)[1]
            if not scores.isna().any().any():
                raise
            found, left_out = ranked_analysis(ranked, scores, m, reference)
            if found is None:
                raise ValueError(left_out.removesuffix(".")) from None
            analysis = found
        means, tests, _ = suite_tables(analysis, {})
        print_report_table(means, f"{study.name}: mean test {analysis.metric} per data set")
        print_report_table(tests, f"{study.name}: variants vs {analysis.reference} ({analysis.reference_how}) "
                                  f"across {len(analysis.means)} data sets ({analysis.metric})")
        if left_out:
            plain_console(120).print(left_out, highlight=False)
        # one row per variant: its means per data set, average rank and W/T/L (the first table), its tests against
        # the reference (the second; empty for the reference itself) and the suite's Friedman test
        both = means.data.rename(columns={d: f"mean_{d}" for d in analysis.means.index}).merge(
            tests.data, on="variant", how="left")
        for column in ("wins", "ties", "losses"):  # the reference's are empty: whole numbers, not floats
            if column in both.columns:
                both[column] = both[column].astype("Int64")
        f, nem = analysis.friedman, analysis.nemenyi
        nan = float("nan")
        frames.append(both.assign(
            reference=analysis.reference, reference_how=analysis.reference_how, rope=analysis.rope,
            friedman_chi2=f.statistic if f else nan, friedman_p=f.p_value if f else nan,
            iman_davenport_f=f.iman_davenport if f else nan, iman_davenport_p=f.iman_davenport_p if f else nan,
            critical_difference=nem.critical_difference if nem else nan, metric=analysis.metric))
    print(f"per data set: learnact compare {study} --dataset NAME", flush=True)
    _write_csv(pd.concat(frames, ignore_index=True), csv)
