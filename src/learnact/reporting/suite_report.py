"""The report of a suite (one study over several data sets).

``report/`` holds the suite section: the per-data-set means table (best in
bold, average rank, wins/ties/losses against the reference), the tests across
data sets (Bayesian signed-rank with its rope, Wilcoxon-Holm, Nemenyi, the
IQM), the critical-difference diagram, the probability-of-improvement matrix,
the IQM with its intervals and the performance profiles. Each data set then
gets today's full report in ``report/<data set>/``, listed in a table that
links to it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..evaluation.suite import SuiteAnalysis, per_dataset, suite_analysis
from ..store import write_text_atomic
from .fig_suite import cd_diagram_figure, iqm_figure, poi_figure, profiles_figure
from .figures import FigureResult, FigureSpec
from .html import index_html
from .index import index_markdown
from .latex import TEX_INSTALL_HINT, ReportError, compile_pdf, latexmk_available, report_tex
from .parallel import map_in_processes
from .render import Cell, Table, remove_earlier_build, write_table
from .saving import save_figure
from .study_view import NothingToShow
from .style import figure_style

__all__ = ["SUITE_FIGURES", "SUITE_TABLES", "build_suite_report", "suite_tables"]

SuiteBuilder = Callable[[SuiteAnalysis], tuple[Figure, str]]

SUITE_FIGURES: tuple[tuple[str, str, str, SuiteBuilder], ...] = (
    ("cd_diagram", "Critical-difference diagram",
     "Average rank of each variant over the data sets (1 = best, on the right) by mean test score; red bars join "
     "variants whose ranks differ by less than the Nemenyi critical difference (Demšar 2006).", cd_diagram_figure),
    ("probability_of_improvement", "Probability of improvement",
     "P(X > Y): the probability that a run of the row variant X scores higher than a run of the column variant Y "
     "on the same data set, averaged over data sets (Agarwal et al. 2021), with stratified bootstrap intervals.",
     poi_figure),
    ("iqm", "Interquartile mean",
     "Interquartile mean of every run's score, normalised per data set (0 = the worst run there, 1 = the best), "
     "with stratified bootstrap intervals (runs resampled within each data set).", iqm_figure),
    ("performance_profiles", "Performance profiles",
     "Fraction of runs whose normalised score exceeds each threshold: a curve above another is better on the "
     "whole distribution of runs, not only on average.", profiles_figure),
)
"""The suite's figures: file stem, title, caption and builder."""

SUITE_TABLES = ("suite_means", "suite_tests", "suite_datasets")
"""The suite's tables, in order."""


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def suite_tables(a: SuiteAnalysis, reports: dict[str, str]) -> list[Table]:
    """The suite section's tables.

    Args:
        a: The analysis across data sets.
        reports: ``{data set: its report folder, relative to the suite report}`` (the data sets with a report).
    """
    variants = list(a.ranks.index)
    datasets = list(a.means.index)
    wtl = a.wtl.set_index("variant") if not a.wtl.empty else pd.DataFrame()
    best = a.means.max(axis=1) if a.higher_is_better else a.means.min(axis=1)
    rows, data = [], []
    for v in variants:
        cells = [Cell(v)] + [Cell(_fmt(a.means.loc[d, v]), bold=bool(a.means.loc[d, v] == best[d])) for d in datasets]
        cells.append(Cell(f"{a.ranks[v]:.2f}", bold=v == variants[0]))
        record = "reference" if v == a.reference else "/".join(str(int(wtl.loc[v, c])) for c in
                                                                ("wins", "ties", "losses"))
        cells.append(Cell(record))
        rows.append(cells)
        data.append({"variant": v, **{d: a.means.loc[d, v] for d in datasets}, "average_rank": a.ranks[v],
                     **({c: int(wtl.loc[v, c]) for c in ("wins", "ties", "losses")} if v in wtl.index else {})})
    notes = [a.excluded] if a.excluded else []
    if a.dropped:
        notes.append(f"Left out (a variant had no finished run there): {', '.join(a.dropped)}.")
    for task in dict.fromkeys(a.without_metric.values()):
        names = [d for d, t in a.without_metric.items() if t == task]
        notes.append(f"Left out (no {a.metric}: {task} data sets): {', '.join(names)}.")
    means = Table(
        "suite_means", f"Mean test {a.metric} over seeds on each data set, best in bold; average rank over the data "
        f"sets (1 = best); data sets won, tied (within {a.rope:g}) and lost against {a.reference} "
        f"({a.reference_how}).",
        ["variant", *datasets, "avg rank", "W/T/L"], rows, "l" + "r" * len(datasets) + "rr", pd.DataFrame(data),
        title="Suite: mean per data set", notes=" ".join(notes))
    nem = a.nemenyi.p_values if a.nemenyi is not None else None
    wil = a.wilcoxon.set_index(["a", "b"])
    iqm = a.iqm.set_index("variant")
    bayes = a.bayes.set_index("variant") if not a.bayes.empty else pd.DataFrame()
    rows, data = [], []
    for v in variants:
        if v == a.reference:
            continue
        pair = (v, a.reference) if (v, a.reference) in wil.index else (a.reference, v)
        p_wil = float(wil.loc[pair, "p_holm"])
        p_nem = float(nem.loc[v, a.reference]) if nem is not None else float("nan")
        b = bayes.loc[v]
        rows.append([Cell(v), Cell(f"{b['p_better']:.3f}", bold=b["p_better"] > 0.95),
                     Cell(f"{b['p_equivalent']:.3f}", bold=b["p_equivalent"] > 0.95),
                     Cell(f"{b['p_worse']:.3f}", bold=b["p_worse"] > 0.95), Cell(f"{p_wil:.3g}"),
                     Cell("-" if p_nem != p_nem else f"{p_nem:.3g}"),
                     Cell(f"{iqm.loc[v, 'iqm']:.3f} [{iqm.loc[v, 'ci_low']:.3f}, {iqm.loc[v, 'ci_high']:.3f}]")])
        data.append({"variant": v, "reference": a.reference, "p_better": b["p_better"],
                     "p_equivalent": b["p_equivalent"], "p_worse": b["p_worse"], "wilcoxon_holm_p": p_wil,
                     "nemenyi_p": p_nem, "iqm": iqm.loc[v, "iqm"], "iqm_low": iqm.loc[v, "ci_low"],
                     "iqm_high": iqm.loc[v, "ci_high"]})
    f = a.friedman
    tests = Table(
        "suite_tests", f"Each variant against {a.reference} ({a.reference_how}) across the data sets: the "
        "Bayesian signed-rank test "
        f"(Benavoli et al. 2017) with a region of practical equivalence of {a.rope:g} in {a.metric}, giving "
        f"P(variant better), P(equivalent) and P({a.reference} better); the Wilcoxon signed-rank test over the "
        f"data sets, Holm-adjusted over all pairs; Nemenyi's test; and the IQM of the normalised scores with its "
        f"{int(a.confidence * 100)}% stratified bootstrap interval.",
        ["variant", "P(better)", "P(equiv.)", "P(worse)", "Wilcoxon-Holm p", "Nemenyi p", "IQM [interval]"],
        rows, "lrrrrrl", pd.DataFrame(data), title="Suite: tests against the reference",
        notes=("" if f is None else f"Friedman test over {f.n_datasets} data sets and {f.n_variants} variants: "
               f"chi2 = {f.statistic:.2f}, p = {f.p_value:.3g} (Iman-Davenport F = {f.iman_davenport:.2f}, "
               f"p = {f.iman_davenport_p:.3g}). Probabilities above 0.95 in bold."))
    rows = [[Cell(d), Cell(", ".join(str(v) for v in a.means.columns if a.means.loc[d, v] == best[d])
                           if d in a.means.index else "-"),  # every variant tied best; a left-out data set: none
             Cell(f"{reports[d]}/", link=f"{reports[d]}/index") if d in reports else Cell("-")]
            for d in [*datasets, *a.dropped, *a.without_metric]]
    listing = Table("suite_datasets", "Each data set's own report (leaderboard, comparisons, figures), in the "
                    "folder of its name.",
                    ["data set", f"best variant (mean {a.metric}; all tied best)", "report"], rows, "lll",
                    pd.DataFrame({"dataset": [r[0].text for r in rows],
                                  "report": [f"{reports[r[0].text]}/index.html" if r[0].text in reports else "-"
                                             for r in rows]}),
                    title="Suite: data sets")
    return [means, tests, listing]


def _suite_figures(a: SuiteAnalysis, folder: Path) -> list[FigureResult]:
    results = []
    for name, title, caption, build in SUITE_FIGURES:
        spec = FigureSpec(name, title, caption, lambda _view, b=build: b(a))  # type: ignore[misc]
        with figure_style():
            try:
                fig, detail = build(a)
            except NothingToShow as why:
                results.append(FigureResult(spec, skipped=str(why)))
                continue
            paths = save_figure(fig, folder, name)
        results.append(FigureResult(spec, detail, tuple(paths)))
    return results


def _protocol(name: str, a: SuiteAnalysis, tidy: pd.DataFrame) -> list[str]:
    seeds = sorted({int(s) for s in tidy["seed"]})
    datasets = list(per_dataset(tidy))
    return [
        f"Suite \u201c{name}\u201d: {tidy['variant'].nunique()} variants on {len(datasets)} data sets "
        f"({', '.join(datasets)}) with {len(seeds)} seeds each ({', '.join(map(str, seeds))}). Every data set is "
        "split, preprocessed and trained as in a single study, and has its own report in the folder of its name "
        "(linked in the table of data sets below).",
        f"Across data sets the unit is the data set: each variant's mean test {a.metric} over seeds on each. "
        "Average ranks, Friedman's test and Nemenyi's critical difference follow Demšar (2006); pairwise "
        "Wilcoxon signed-rank tests with Holm's correction and the Bayesian signed-rank test with a region of "
        "practical equivalence follow Benavoli et al. (2016, 2017). The interquartile mean, the probability of "
        "improvement and the performance profiles follow Agarwal et al. (2021), on every run's score normalised "
        "per data set (0 = its worst run, 1 = its best), with stratified bootstrap intervals (runs resampled "
        "within each data set).",
    ]


def _one(build_one: Callable[[str, pd.DataFrame, Path], Path], out: Path, part: tuple[str, pd.DataFrame]) -> bool:
    """Build one data set's report in ``out/<label>``; ``False`` when it has nothing to show."""
    label, sub = part
    try:
        build_one(label, sub, out / label)
    except NothingToShow:
        return False
    return True


def build_suite_report(folder: Path, tidy: pd.DataFrame, name: str, out: Path, *, pdf: bool,
                       build_one: Callable[[str, pd.DataFrame, Path], Path], workers: int | None = None,
                       progress: Callable[[str], None] | None = None) -> Path:
    """Build the suite section in ``out`` and each data set's report in ``out/<data set>/``.

    The data sets' reports build side by side in worker processes
    (:func:`~learnact.reporting.parallel.map_in_processes`; ``build_one`` is
    pickled to them, so it is a module-level function or a partial of one).

    Args:
        folder: The study folder.
        tidy: The suite's tidy table.
        name: The study's name.
        out: The report folder.
        pdf: Also compile ``report.pdf`` (the suite's and each data set's).
        build_one: ``(data set, its tidy rows, its report folder) -> folder``: today's report of one data set.
        workers: Most worker processes (default: :func:`~learnact.reporting.parallel.default_workers`).
        progress: Called with one line as each data set's report is done.
    """
    out.mkdir(parents=True, exist_ok=True)
    remove_earlier_build(out, (stem for stem, *_ in SUITE_FIGURES), SUITE_TABLES)
    parts = list(per_dataset(tidy).items())
    done = map_in_processes(functools.partial(_one, build_one, out), parts, workers=workers,
                            on_done=None if progress is None else
                            lambda i, _r: progress(f"report of {parts[i][0]} built"))
    reports = {label: label for (label, _), built in zip(parts, done, strict=True) if built}
    analysis = suite_analysis(tidy)  # the study's reference, else the best-ranked fixed baseline
    tables = suite_tables(analysis, reports)
    for t in tables:
        write_table(t, out / "tables")
    figures = _suite_figures(analysis, out / "figures")
    title = f"learnact suite report: {name}"
    protocol = _protocol(name, analysis, tidy)
    tex = out / "report.tex"
    write_text_atomic(tex, report_tex(title, protocol, tables, figures, f"Suite {name}."))
    will_compile = pdf and latexmk_available()
    write_text_atomic(out / "index.md", index_markdown(title, protocol, tables, figures, (), will_compile))
    write_text_atomic(out / "index.html", index_html(title, protocol, tables, figures))
    if pdf:
        if not will_compile:
            raise ReportError(f"report built in {out} but not report.pdf: latexmk not found; {TEX_INSTALL_HINT}")
        compile_pdf(tex)
    return out
