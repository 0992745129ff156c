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

from ..evaluation.quantities import describe_quantity
from ..evaluation.suite import SuiteAnalysis, _primary_label, per_dataset, suite_analysis, suite_scores
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

__all__ = ["SUITE_FIGURES", "SUITE_TABLES", "build_suite_report", "metric_label", "suite_tables"]

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


def metric_label(metric: str) -> str:
    """A suite's score as its report names it: the metric registry's label (``R²`` for ``r2``), in lower case
    where it is a plain word (``accuracy``); a suite of both tasks: ``score (accuracy; R² for regression)``."""
    try:
        label = describe_quantity(metric).label
    except ValueError:  # the primary score of a suite of both tasks, spelled with raw names
        return metric.replace("R2", describe_quantity("r2").label)
    return label.lower() if label[:1].isupper() and label[1:].islower() else label


def _best(row: pd.Series, higher: bool) -> list[str]:
    """The variants of the best mean in ``row`` (one data set's means; NaN: no finished run), all tied best."""
    row = row.dropna()
    if row.empty:
        return []
    top = row.max() if higher else row.min()
    return [str(v) for v in row.index if row[v] == top]


def _listing(means: pd.DataFrame, ranked: list[str], label: str, higher: bool, reports: dict[str, str],
             others: list[str]) -> Table:
    """The table of data sets: each one's best variant(s) among those that finished there and its report.

    Args:
        means: ``(data sets x variants)`` mean scores over seeds, NaN where a variant finished no run.
        ranked: The data sets in the ranking across data sets.
        label: The score's name (:func:`metric_label`).
        higher: Whether a higher score is better.
        reports: ``{data set: its report folder}``.
        others: Data sets without a score (listed with ``-``).
    """
    rows, data = [], []
    for d in [*means.index, *(o for o in others if o not in means.index)]:
        best = _best(means.loc[d], higher) if d in means.index else []
        rows.append([Cell(d), Cell(", ".join(best) or "-"),
                     Cell(f"{reports[d]}/", link=f"{reports[d]}/index") if d in reports else Cell("-")])
        data.append({"dataset": d, "best_variant": ", ".join(best) or "-", "in_ranking": d in ranked,
                     "report": f"{reports[d]}/index.html" if d in reports else "-"})
    out = [str(d) for d in means.index if d not in ranked and not means.loc[d].isna().all()]
    notes = (f"Left out of the ranking across data sets (a variant finished no run there): {', '.join(out)}; "
             "the best variant there is the best of those that finished." if out else "")
    return Table("suite_datasets", "Each data set's own report (leaderboard, comparisons, figures), in the "
                 "folder of its name.", ["data set", f"best variant (mean {label}; all tied best)", "report"], rows,
                 "lll", pd.DataFrame(data), title="Suite: data sets", notes=notes)


def suite_tables(a: SuiteAnalysis, reports: dict[str, str], all_means: pd.DataFrame | None = None) -> list[Table]:
    """The suite section's tables.

    Args:
        a: The analysis across data sets.
        reports: ``{data set: its report folder, relative to the suite report}`` (the data sets with a report).
        all_means: ``(data sets x variants)`` means of every data set and variant (:func:`suite_scores`), for each
            data set's best variant; default: the analysis's (a data set left out of it shows none).
    """
    label = metric_label(a.metric)
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
        "suite_means", f"Mean test {label} over seeds on each data set, best in bold; average rank over the data "
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
        f"(Benavoli et al. 2017) with a region of practical equivalence of {a.rope:g} in {label}, giving "
        f"P(variant better), P(equivalent) and P({a.reference} better); the Wilcoxon signed-rank test over the "
        f"data sets, Holm-adjusted over all pairs; Nemenyi's test; and the IQM of the normalised scores with its "
        f"{int(a.confidence * 100)}% stratified bootstrap interval.",
        ["variant", "P(better)", "P(equiv.)", "P(worse)", "Wilcoxon-Holm p", "Nemenyi p", "IQM [interval]"],
        rows, "lrrrrrl", pd.DataFrame(data), title="Suite: tests against the reference",
        notes=("" if f is None else f"Friedman test over {f.n_datasets} data sets and {f.n_variants} variants: "
               f"chi2 = {f.statistic:.2f}, p = {f.p_value:.3g} (Iman-Davenport F = {f.iman_davenport:.2f}, "
               f"p = {f.iman_davenport_p:.3g}). Probabilities above 0.95 in bold."))
    listing = _listing(a.means.reindex([*a.means.index, *a.dropped]) if all_means is None else all_means,
                       list(a.means.index), label, a.higher_is_better, reports, list(a.without_metric))
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


def _protocol(name: str, a: SuiteAnalysis | None, tidy: pd.DataFrame, left_out: str) -> list[str]:
    seeds = sorted({int(s) for s in tidy["seed"]})
    datasets = list(per_dataset(tidy))
    first = (f"Suite \u201c{name}\u201d: {tidy['variant'].nunique()} variants on {len(datasets)} data sets "
             f"({', '.join(datasets)}) with {len(seeds)} seeds each ({', '.join(map(str, seeds))}). Every data set is "
             "split, preprocessed and trained as in a single study, and has its own report in the folder of its "
             "name (linked in the table of data sets below).")
    if a is None:
        return [first, left_out]
    return [first, *([left_out] if left_out else []),
            f"Across data sets the unit is the data set: each variant's mean test {metric_label(a.metric)} over "
            "seeds on each. "
            "Average ranks, Friedman's test and Nemenyi's critical difference follow Demšar (2006); pairwise "
            "Wilcoxon signed-rank tests with Holm's correction and the Bayesian signed-rank test with a region of "
            "practical equivalence follow Benavoli et al. (2016, 2017). The interquartile mean, the probability of "
            "improvement and the performance profiles follow Agarwal et al. (2021), on every run's score normalised "
            "per data set (0 = its worst run, 1 = its best), with stratified bootstrap intervals (runs resampled "
            "within each data set).",
            ]


def ranked_analysis(tidy: pd.DataFrame, means: pd.DataFrame, metric: str | None = None,
                    reference: str | None = None) -> tuple[SuiteAnalysis | None, str]:
    """The analysis across data sets (:func:`~learnact.evaluation.suite.suite_analysis` of ``metric`` against
    ``reference``), and a sentence on what it leaves out (``""``: nothing). The report's suite section and
    ``learnact compare SUITE`` use it alike.

    When fewer than 2 data sets have a finished run of every variant, the variants with no finished run (or
    no finite score) on some data set are left out of the ranking, as a single study leaves out a variant
    whose every run diverged; with fewer than 2 variants or data sets left there is no ranking (``None``, and
    the sentence says why).

    Args:
        tidy: The suite's tidy table.
        means: Its ``(data sets x variants)`` means (:func:`suite_scores`; NaN: no finished run).
    """
    try:
        return suite_analysis(tidy, metric, reference), ""  # the study's reference, else the best-ranked baseline
    except ValueError as why:
        first = str(why)
    missing = {str(v): [str(d) for d in means.index if pd.isna(means.loc[d, v])] for v in means.columns
               if means[v].isna().any()}
    kept = tidy[~tidy["variant"].astype(str).isin(missing)]
    kept.attrs = dict(tidy.attrs)
    note = ("Left out of the ranking across data sets: " + "; ".join(
        f"{v} (no finished run with a finite score on {', '.join(ds)})"
        for v, ds in missing.items()) + ", so that the ranking compares every variant on the same data sets."
        if missing else "")
    if reference is not None and reference in missing:  # a reference named by the user is not replaced
        return None, (f"{note} " if note else "") + f"No ranking across data sets against {reference}: it has no " \
            f"finished run with a finite score on {', '.join(missing[reference])}."
    ref = tidy.attrs.get("reference")
    if ref is not None and str(ref) in missing:
        kept.attrs["reference"] = None
        note += f" The study's reference {ref} is among them; the variants are compared with another."
    left = list(dict.fromkeys(kept["variant"].astype(str)))
    if missing and len(left) >= 2:
        try:
            return suite_analysis(kept, metric, reference), note
        except ValueError as why:
            first = str(why)
    else:
        first = (f"a suite comparison needs at least 2 variants with a finished run on every data set; got "
                 f"{len(left)} ({', '.join(left) or 'none'})" if missing else first)
    return None, (f"{note} " if note else "") + f"No ranking across data sets: {first}."


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
    _, means = suite_scores(tidy)
    analysis, left_out = ranked_analysis(tidy, means)
    if analysis is not None:
        tables = suite_tables(analysis, reports, means)
        figures = _suite_figures(analysis, out / "figures")
    else:  # the data sets' table and reports, without the ranking (the protocol says why)
        tables = [_listing(means, [], metric_label(_primary_label(tidy)), True, reports, [])]
        figures = [FigureResult(FigureSpec(stem, title, caption, build),  # type: ignore[arg-type]
                                skipped="no ranking across data sets (see the protocol above)")
                   for stem, title, caption, build in SUITE_FIGURES]
    for t in tables:
        write_table(t, out / "tables")
    title = f"learnact suite report: {name}"
    protocol = _protocol(name, analysis, tidy, left_out)
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
