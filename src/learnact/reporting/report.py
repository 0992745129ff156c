"""Build a study's report pack from its folder alone: figures, tables, ``report.tex``, ``index.md``, ``index.html``.

Layout of ``STUDY/report/``::

    index.md                 every table inline, every figure as a thumbnail
    index.html               the same as one self-contained page (figures embedded, a contents bar)
    report.tex (report.pdf)  standalone LaTeX document (PDF with ``pdf=True``)
    figures/<name>.png|pdf   see :data:`~learnact.reporting.figures.FIGURES`
    tables/<name>.csv|md|tex leaderboard, comparisons, gate_diagnostics

Nothing is trained and no model is loaded: the numbers come from
:mod:`learnact.evaluation` and the run folders.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..store import REPORT_DIR, REPORT_MARKER, not_a_study_folder, protected_folder, write_text_atomic
from .figures import FIGURES, build_figures
from .html import index_html
from .index import SUITE_REPORT_PHRASE, index_markdown
from .latex import TEX_INSTALL_HINT, ReportError, compile_pdf, latexmk_available, report_tex
from .render import PAGES, Table, remove_earlier_build, write_table
from .study_view import MULTICLASS_METRICS, NothingToShow, StudyView, load_study_view
from .style import format_number
from .tables import comparison_table, diagnostics_summary_table, leaderboard_table

if TYPE_CHECKING:
    import pandas as pd

    from ..config import DataConfig

__all__ = ["REPORT_DIR", "TABLES", "build_report", "protocol_paragraphs", "caption_suffix"]


TABLES: tuple[tuple[str, Callable[[StudyView], Table]], ...] = (
    ("leaderboard", leaderboard_table),
    ("comparisons", comparison_table),
    ("gate_diagnostics", diagnostics_summary_table),
)
"""The report's tables: name and builder."""


def _span(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    return format_number(lo) if lo == hi else f"{format_number(lo)}\u2013{format_number(hi)}"


def caption_suffix(view: StudyView) -> str:
    """Sentence appended to figure captions: data set and seeds (each caption says which part of each seed's
    split it shows: test, validation or training rows; the figures are not all of the test sets)."""
    seeds = ", ".join(map(str, view.seeds))
    return f"Data: {view.dataset_label}, split anew for each of {len(view.seeds)} seeds ({seeds})."


def _kinds(view: StudyView) -> str:
    """How many of the study's variants are of each kind: every variant with a run, those whose runs all
    diverged too (the sentence counts :attr:`~.study_view.StudyView.all_variants`)."""
    kinds = [view.kind(v) for v in view.all_variants]
    fixed, gated, families = kinds.count("fixed"), kinds.count("gated"), kinds.count("family")
    parts = [f"{fixed} fixed baseline{'s' if fixed != 1 else ''}"]
    if gated:
        parts.append(f"{gated} gated mixture{'s' if gated != 1 else ''}")
    if families:
        parts.append(f"{families} learnable famil{'ies' if families != 1 else 'y'}")
    return ", ".join(parts)


def _families_paragraph(view: StudyView) -> str:
    """Which learnable families the study trains, with their granularity and non-default hyper-parameters."""
    from ..names import family_params_model  # the torch-free registry (config validation fills it)

    items = []
    for v in view.families:
        act = view.config(v).activation
        granularity = act.family_params().granularity
        per = "one parameter set per unit" if granularity == "unit" else "one parameter set per layer"
        shown = {k: val for k, val in act.params.items() if k != "granularity"}
        extra = "".join(f", {k} {val:g}" if isinstance(val, float) else f", {k} {val}" for k, val in shown.items())
        items.append(f"{v}: {act.kind} ({per}{extra})")
    names = list(dict.fromkeys(view.config(v).activation.kind for v in view.families))
    defaults = []
    for n in names:
        fields = [f"{k} {format_number(f.default) if isinstance(f.default, float) else f.default}"
                  for k, f in family_params_model(n).model_fields.items() if k != "granularity"]
        if fields:
            defaults.append(f"{n}: {', '.join(fields)}")
    tail = f" Hyper-parameters not named take the family's defaults ({'; '.join(defaults)})." if defaults else ""
    return (f"Learnable families replace the activation by a function with its own learned parameters, trained "
            f"with the network (no gate, no entropy term): {'; '.join(items)}.{tail}")



def _preprocessing_phrase(data: DataConfig) -> str:
    """What each training part fits: the optional imputation / one-hot steps, then the scaler."""
    steps = []
    if data.impute is not None:
        steps.append(f"missing values imputed ({data.impute.replace('_', ' ')}"
                     + (", with missing-value indicators" if data.missing_indicators else "") + ")")
    if data.one_hot:
        steps.append("text columns one-hot encoded")
    if not steps:
        return "a scaler fitted on the training part only"
    return f"{' and '.join(steps)}, then a scaler, all fitted on the training part only"


def protocol_paragraphs(view: StudyView) -> list[str]:
    """Plain-text paragraphs describing the study, taken from its saved configs."""
    n_runs = sum(len(r) for r in view.runs.values())
    n_diverged = sum(len(r) for r in view.diverged.values())
    configs = [view.config(v) for v in view.all_variants]
    first = configs[0]
    tidy = view.tidy
    sizes = tidy.drop_duplicates("run_id")[["n_train", "n_val", "n_test"]].median()
    split_kind = "random" if view.task == "regression" else "stratified"
    paras = [
        f"Study \u201c{view.name}\u201d: {len(view.all_variants)} variants ({_kinds(view)}) and "
        f"{len(view.seeds)} seeds ({', '.join(map(str, view.seeds))}), {n_runs} finished runs"
        + (f" and {n_diverged} diverged {'run' if n_diverged == 1 else 'runs'}" if n_diverged else "")
        + ". Everything below is computed from the saved run folders, without retraining."
        + (" This data set is one of a suite's: the comparison across its data sets is "
           f"{SUITE_REPORT_PHRASE}." if view.dataset is not None else ""),
        f"Data: {view.dataset_label}. For each seed, a {split_kind} train/test split (test share "
        f"{format_number(first.data.test_size)}), {_preprocessing_phrase(first.data)}, and a {split_kind} "
        f"train/validation split of the training part (validation share {format_number(first.data.val_size)}); "
        f"about {sizes['n_train']:.0f} training, {sizes['n_val']:.0f} validation and {sizes['n_test']:.0f} test "
        "rows per seed. The seed sets the split as well as the initialisation.",
        f"Model and training: an MLP with hidden widths {', '.join(map(str, first.backbone.hidden))}; Adam "
        f"(learning rate {_span([c.train.lr for c in configs])}, weight decay "
        f"{_span([c.train.weight_decay for c in configs])}, batch size "
        f"{_span([c.train.batch_size for c in configs])}); early stopping on the validation loss (at most "
        f"{_span([c.train.max_epochs for c in configs])} epochs, patience {_span([c.train.patience for c in configs])}"
        ", per variant) with the best weights restored.",
    ]
    gated = [v for v in view.all_variants if view.kind(v) == "gated"]  # not the learnable families
    if gated:
        cands = list(dict.fromkeys(c for v in gated for c in view.config(v).activation.candidates))
        gates = list(dict.fromkeys(view.config(v).activation.gate for v in gated))
        temps = [view.config(v).activation.temperature for v in gated]
        lams = [view.config(v).train.entropy_weight for v in gated]
        paras.append(
            f"Gated mixtures mix the candidates {', '.join(cands)} with gates softmax(z / T) "
            f"({', '.join(gates)} gates; T {_span(temps)}); the objective is the task loss plus \u03bb times the "
            f"summed gate entropy of the layers (\u03bb {_span(lams)}; \u03bb > 0 favours selecting one candidate)."
            + _schedules_sentence(view, gated))
    if view.families:
        paras.append(_families_paragraph(view))
    if view.multiclass:
        paras.append(MULTICLASS_METRICS)
    ref = view.baseline
    stats = ("Statistics: mean and sample standard deviation over seeds, with 95% Student-t intervals of the mean.")
    if n_diverged:
        stats += (" A run whose training loss, validation loss, weights or gates stopped being finite counts as "
                  "diverged: it is listed with its count and left out of every statistic and figure. "
                  + view.excluded_note())
    if ref is not None and len(view.variants) > 1:
        stats += (f" Paired comparisons with the reference {ref} use the seeds both finished: the Nadeau\u2013Bengio "
                  "corrected resampled t-test and the Wilcoxon signed-rank test, Holm-adjusted over the variants "
                  "of each metric.")
    paras.append(stats)
    return paras


def _schedules_sentence(view: StudyView, gated: list[str]) -> str:
    """`` The temperature of annealed follows ...``: one clause per gated variant with a temperature schedule."""
    clauses = []
    for v in gated:
        act, train = view.config(v).activation, view.config(v).train
        if act.temperature_schedule != "constant":
            end = act.temperature_end if act.temperature_end is not None else act.temperature
            clauses.append(f"{v}: {act.temperature_schedule}, from T = {format_number(act.temperature)} at epoch 1 "
                           f"to T = {format_number(end)} at epoch {train.max_epochs}")
    if not clauses:
        return ""
    return (" The gate temperature follows a schedule over the epochs (learnact list schedules) in "
            + "; ".join(clauses) + ".")




def _built_before_markers(folder: Path) -> bool:
    """Whether ``folder`` holds a report pack learnact built before it marked them: its ``index.md`` opens with
    the title learnact writes."""
    try:
        with open(folder / "index.md", encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return first.startswith(("# learnact report: ", "# learnact suite report: "))


def claim_report_folder(folder: Path, study: Path) -> None:
    """Make ``folder`` the report folder of the study in ``study``, refusing one that holds what learnact did
    not write.

    A report rebuilds its folder in place, removing the earlier build's pages, figures and tables
    (:func:`remove_earlier_build`). That is safe in a folder learnact made: the study's own ``report/`` (and
    anything in it, such as a suite's data-set reports), or a folder marked with :data:`REPORT_MARKER` by an
    earlier build (or inside one). Any other folder must not hold what a report writes (its pages, ``figures/``,
    ``tables/``): a user's ``index.html`` or ``report.tex`` there is never replaced, and their other files (a
    ``README.md``, ``.git``) are left alone. The marker is written here.

    Raises:
        ReportError: ``folder`` is a file, lies in a study's run store (``runs/``, a run folder,
            ``superseded/``: :func:`~learnact.store.protected_folder`), or holds a report's names that learnact
            did not write.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"report folder {str(folder)!r} is a file; give a folder (new, or an earlier report's)")
    inside = protected_folder(folder)
    if inside is not None:
        raise ReportError(f"report folder {str(folder)!r} lies in {str(inside)!r}, part of a study's run store, "
                          f"where learnact run removes and moves folders; choose a folder outside it")
    here = folder.resolve()
    default = (Path(study) / REPORT_DIR).resolve()
    ours = (here == default or default in here.parents
            or any((p / REPORT_MARKER).is_file() for p in (here, *here.parents)) or _built_before_markers(folder))
    clash = [name for name in (*PAGES, "figures", "tables") if (folder / name).exists()] if not ours else []
    if clash:
        raise ReportError(f"report folder {str(folder)!r} holds {', '.join(clash)}, which learnact did not write "
                          f"(the folder has no {REPORT_MARKER}) and a report would write over; give a new or empty "
                          f"folder, or move those out of it")
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / REPORT_MARKER
    if not marker.is_file():
        write_text_atomic(marker, "A report pack that learnact wrote; `learnact report` rebuilds this folder.\n")


def _workers(workers: int | Literal["auto"] | None, tidy: pd.DataFrame, per_figure: bool = True) -> int:
    if workers == "auto":
        from .parallel import auto_workers

        return auto_workers(int(tidy["run_id"].nunique()) if "run_id" in tidy.columns else 0, per_figure)
    return workers or 1


def _dataset_report(study: Path, pdf: bool, label: str, sub: pd.DataFrame, where: Path) -> Path:
    """One data set's report of a suite (module level, so a report worker process can run it)."""
    return build_report(study, pdf=pdf, out=where, dataset=label, tidy=sub)


def build_report(study_dir: Path | str, *, pdf: bool = False, out: Path | str | None = None,
                 dataset: str | None = None, tidy: pd.DataFrame | None = None,
                 aggregates: pd.DataFrame | None = None, workers: int | Literal["auto"] | None = None,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Build the report pack of a finished study.

    A suite (runs on several data sets) gets the suite section in the report
    folder and each data set's own report in ``<report>/<data set>/``
    (:mod:`.suite_report`).

    Args:
        study_dir: The study folder (``study.json`` and ``runs/``).
        pdf: Also compile ``report.tex`` to ``report.pdf`` with ``latexmk``.
        out: Report folder (default: ``<study_dir>/report``).
        dataset: In a suite, build the report of this data set only.
        tidy: The study's tidy table, when the caller has it (not rebuilt).
        aggregates: ``seed_aggregates(tidy)`` of that table, when the caller has it (not recomputed; only
            with ``tidy``, and not for a suite).
        workers: Worker processes for the figures (a suite: for its data sets' reports); default 1, all in
            this process. ``"auto"`` (what ``learnact run`` and ``learnact report`` pass) uses every core
            once the study is large enough to gain (:func:`~learnact.reporting.parallel.auto_workers`).
            Workers start from a fork server or are
            spawned, so a script calling this with ``workers > 1`` needs the usual
            ``if __name__ == "__main__":`` guard.
        progress: Called with one line as each figure (a suite: each data set's report) is done.

    Returns:
        The report folder.

    Raises:
        FileNotFoundError: ``study_dir`` does not exist.
        RunStoreError: It holds no finished run, or a run folder is corrupt.
        ReportError: ``pdf=True`` and ``latexmk`` is missing (everything else
            is built first; the message says what to install) or LaTeX failed.
    """
    if dataset is None:
        from ..evaluation import tidy_results
        from ..evaluation.suite import is_suite

        study = Path(study_dir)
        if not study.is_dir():
            raise FileNotFoundError(not_a_study_folder(study))
        tidy = tidy_results(study) if tidy is None else tidy
        claim_report_folder(Path(out) if out is not None else study / REPORT_DIR, study)
        if is_suite(tidy):
            from .suite_report import build_suite_report

            name = load_study_view(study).name
            return build_suite_report(
                study, tidy, name, Path(out) if out is not None else study / REPORT_DIR, pdf=pdf,
                build_one=functools.partial(_dataset_report, study, pdf),
                workers=_workers(workers, tidy, per_figure=False), progress=progress)
    view = load_study_view(study_dir, dataset)
    if tidy is not None:
        view.__dict__["tidy"] = tidy  # the cached table (StudyView.tidy), rebuilt from the same folders otherwise
        if aggregates is not None:
            view.__dict__["aggregates"] = aggregates  # StudyView.aggregates, the same computation on that table
    folder = Path(out) if out is not None else view.folder / REPORT_DIR
    claim_report_folder(folder, view.folder)
    remove_earlier_build(folder, (spec.name for spec in FIGURES), (name for name, _ in TABLES))
    tables: list = []
    skipped_tables: list[tuple[str, str]] = []

    def build_tables() -> None:  # in this process, while the figure workers start and draw
        for name, builder in TABLES:
            try:
                table = builder(view)
            except NothingToShow as why:
                skipped_tables.append((name, str(why)))
                continue
            write_table(table, folder / "tables")
            tables.append(table)

    figures = build_figures(view, folder / "figures", workers=_workers(workers, view.tidy), progress=progress,
                            meanwhile=build_tables)
    title = f"learnact report: {view.name}"
    protocol = protocol_paragraphs(view)
    tex = folder / "report.tex"
    write_text_atomic(tex, report_tex(title, protocol, tables, figures, caption_suffix(view), skipped_tables))
    will_compile = pdf and latexmk_available()
    write_text_atomic(folder / "index.md", index_markdown(title, protocol, tables, figures, skipped_tables,
                                                          will_compile))
    write_text_atomic(folder / "index.html", index_html(title, protocol, tables, figures, skipped_tables))
    if pdf:
        if not will_compile:
            raise ReportError(f"report built in {folder} but not report.pdf: latexmk not found; {TEX_INSTALL_HINT}")
        compile_pdf(tex)
    return folder
