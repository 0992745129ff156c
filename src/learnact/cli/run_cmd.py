"""``learnact run``: train a study (resumable) on an executor and print its leaderboard."""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.core import TyperArgument

from .._gc import loading
from ..names import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_ENGINE, EXECUTORS
from .app import app

if TYPE_CHECKING:  # the study file is validated before torch and the training code load
    from ..config import StudyConfig

__all__ = ["run", "default_out"]

Progress = Callable[[int, int, str], None]


def default_out(name: str) -> Path:
    """A new folder name in the current folder: ``learnact-study-<name>-<YYYYmmdd-HHMMSS>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(f"learnact-study-{name}-{stamp}")
    n = 1
    while path.exists():
        n += 1
        path = Path(f"learnact-study-{name}-{stamp}-{n}")
    return path


def _study_source(preset: str | None, config: Path | None, out: Path | None,
                  study: str | None = None) -> tuple[str | Path, str]:
    """What to load, and how to describe it: STUDY, --config, --preset, the study in --out, or the paper preset."""
    if study is not None and (config is not None or preset is not None):
        other = f"--config {config}" if config is not None else f"--preset {preset}"
        raise ValueError(f"give the study once: as the argument STUDY or with --config/--preset, not both "
                         f"(got {study} and {other})")
    if preset is not None and config is not None:
        raise ValueError(f"give --preset or --config, not both (got --preset {preset} --config {config})")
    from ..names import list_presets

    presets = list_presets()
    if study is not None:  # a preset's name, or a path (a str preset name is the preset for load_study)
        if study not in presets:
            return Path(study), f"config {study}"
        if Path(study).exists():
            what = "folder" if Path(study).is_dir() else "file"
            raise ValueError(f"study {study!r} names both the built-in preset and the {what} {study!r} in this "
                             f"folder; give --preset {study} for the preset, or ./{study} for the {what}")
        return study, f"preset {study}"
    if config is not None:
        return config, f"config {config}"
    if preset is not None:  # the shipped preset, never a file or folder of that name here
        if preset not in presets:
            from .._checks import did_you_mean

            raise ValueError(f"--preset {preset!r} is not a built-in preset{did_you_mean(preset, presets)}; "
                             f"presets: {', '.join(presets)}; give a study file or folder as STUDY or --config")
        return preset, f"preset {preset}"
    from ..store import STUDY_FILE, holds_runs, is_study_folder

    if out is not None and is_study_folder(out):
        return out / STUDY_FILE, f"the study already in {out}"
    if out is not None and holds_runs(out):  # not the paper preset, which would move every run to superseded/
        what = "no study.json" if not (out / STUDY_FILE).exists() else "a study.json learnact cannot read"
        raise ValueError(f"--out {str(out)!r} holds runs learnact wrote but {what}, so their study is unknown; "
                         f"give the study they belong to: `learnact run STUDY_FILE --out {out}` (or --config / "
                         f"--preset)")
    return "paper", "preset paper"


def _import_paths(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if ":" in value else []
    if isinstance(value, dict):
        return [p for v in value.values() for p in _import_paths(v)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in _import_paths(v)]
    return []


def _check_import_paths(study: StudyConfig) -> None:
    """Resolve every candidate the study names by import path (``mypkg.acts:fn``) now, in this process: a typo
    is a one-line error before any run starts, not a failed run in a worker."""
    users: dict[str, list[str]] = {}
    for v in study.variants:
        for p in _import_paths(v.activation.canonical()):
            users.setdefault(p, []).append(v.name)
    if not users:
        return
    from ..exceptions import ConfigError
    from ..model.activations import get_candidate

    problems = []
    for path, names in users.items():  # every one that fails, each with the variants that name it
        try:
            get_candidate(path)
        except ValueError as exc:  # ConfigError too
            shown = ", ".join(repr(n) for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            which = f"variant{'s' if len(names) > 1 else ''} {shown}"
            problems.append(f"{which}: {str(exc).removeprefix('invalid config: ')}")
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))


def _check_out(folder: Path) -> None:
    """The study folder can be made here: no file in its place, and its parent is a folder."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {str(folder)!r} is a file, not a folder; give a new folder or an existing study "
                         f"folder")
    if not folder.parent.is_dir():
        if folder.parent.exists():
            raise ValueError(f"output folder's parent {str(folder.parent)!r} is a file, not a folder; give --out "
                             f"inside an existing folder")
        raise FileNotFoundError(f"output folder's parent {str(folder.parent)!r} does not exist; create it first")
    from ..store import check_study_entries, foreign_outputs, protected_folder

    check_study_entries(folder)
    inside = protected_folder(folder)
    if inside is not None:
        raise ValueError(f"--out {str(folder)!r} lies in {str(inside)!r}, part of a study's run store, where "
                         f"learnact removes and moves folders; choose a folder outside it")
    clash = foreign_outputs(folder)
    if clash:
        why = "its study.json is not one learnact run wrote" if "study.json" in clash else "it has no study.json"
        raise ValueError(f"--out {str(folder)!r} is not a study folder ({why}) but holds "
                         f"{', '.join(clash)}, which learnact run would write over; give a new or empty folder, or "
                         f"move those out of it")


@contextlib.contextmanager
def _resume_hint(new_folder: bool, folder: Path) -> Iterator[None]:
    """Where a write error says to rerun the same command, and that command made a new folder (no ``--out``),
    say to rerun with ``--out FOLDER``: the same command would start again in another new folder."""
    from ..store import StoreWriteError

    try:
        yield
    except StoreWriteError as exc:
        text = str(exc)
        if not new_folder or StoreWriteError.RERUN not in text:
            raise
        raise StoreWriteError(text.replace(StoreWriteError.RERUN, f"rerun with --out {folder}")) from exc


def _announced(progress: Progress | None, note: str) -> Progress | None:
    """``progress`` that first prints ``note`` (once the study folder is ours: a refused run prints one line)."""
    if progress is None:
        return None
    shown: list[bool] = []

    def update(done: int, total: int, run_id: str) -> None:
        if not shown:
            shown.append(True)
            print(f"learnact: {note}", file=sys.stderr, flush=True)
        progress(done, total, run_id)

    return update


class _WarmUp:
    """Starts the report workers' helper once, as early as the report can use it without slowing training.

    That is when this process has trained the study's runs
    (:func:`~learnact.experiment.engines.when_trained`: the last stack is
    done; timing each variant's step cost, building and writing the run
    folders and printing the leaderboard keep one core busy), or, where the
    runs train in other processes, when the first run folder is written. The
    helper (a fork of this process, or else the fork server:
    :func:`~learnact.reporting.parallel.warm_up`) imports the drawing code on
    the idle core, so the report's workers start as soon as the leaderboard is
    out. A fork server does not import PyTorch: this process has it and
    evaluates the activation shapes before the workers start
    (:attr:`~learnact.reporting.figures.FigureSpec.prepare`), except in a
    suite, whose workers build whole data-set reports (their tables' t
    intervals too: scipy's special functions). Only where the report will use
    workers (:func:`~learnact.reporting.parallel.auto_workers`).

    :meth:`preload` imports, while the stacks train, what this process needs
    once they are done.
    """

    def __init__(self, report: bool, n_runs: int, suite: bool) -> None:
        from ..reporting.parallel import auto_workers

        self._wanted = report and auto_workers(n_runs, per_figure=not suite) >= 2
        self._suite = suite
        self._report = report
        self._preloaded = False

    def trained(self, *_: object) -> None:
        """Training is over in this process: freeze what it holds, then :meth:`start` the report's helper.

        The trained runs' artefacts (histories, predictions, models), built
        with the collector paused, would otherwise be walked by the
        collections that the bookkeeping after training sets off here, and by
        those of the helper's imports, which then copied their pages from
        this process. Only in the console script, which ends after the study:
        the trained models hold reference cycles, which a frozen collector
        would keep for the life of a Python session calling :func:`~.app.main`.
        """
        from .app import ends_after_command

        if ends_after_command():
            gc.freeze()
        self.start()

    def start(self, *_: object) -> None:
        """Start the report's helper, unless it is not wanted or started already."""
        if self._wanted:
            self._wanted = False
            from ..reporting.parallel import warm_up

            try:
                warm_up(("torch", "learnact.model", "scipy.special") if self._suite else ())
            except OSError:  # no server now (too many open files, say): the report starts its workers itself
                pass

    def preload(self) -> None:
        """Import what this process needs once training is over, while its forked workers train (once).

        Called by :func:`~learnact.training.scheduling.while_stacks_train`:
        scipy's special functions (the leaderboard's t intervals: 0.15-0.3 s
        of CPU), rich's tables and, with a report, the report's code. Each
        had been imported on the path from the last stack to the leaderboard
        and the report's workers, with one core idle beside it.
        """
        if self._preloaded:
            return
        self._preloaded = True
        names = ["scipy.special", "rich.table", "safetensors.torch"]
        if self._report:
            names += ["learnact.reporting.report", "multiprocessing.connection"]
        with loading():
            for name in names:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 - only a head start: whoever needs it imports it and says why not
                    pass

    def on_written(self, progress: Progress | None) -> Progress | None:
        """``progress`` that also calls :meth:`start` when the first run folder is written."""
        if not self._wanted:
            return progress

        def update(done: int, total: int, run_id: str) -> None:
            if run_id:
                self.start()
            if progress is not None:
                progress(done, total, run_id)

        return update


MAX_TASK_THREADS = 1024
"""The most ``--threads`` a task of the ``processes`` or ``dask`` executor takes (another machine's cores)."""


def _most_threads(executor: str) -> int:
    """The most ``--threads``: 4 per core this process may use where the runs train here (the vectorised
    engine forks a worker per thread: 100,000 of them ran out of memory), else :data:`MAX_TASK_THREADS`."""
    if executor == "local":
        from .._processes import most_processes

        return most_processes()
    return MAX_TASK_THREADS


def _note(quiet: bool, text: str) -> None:
    if not quiet:
        print(f"learnact: {text}", file=sys.stderr, flush=True)


def _default_threads(engine: str, executor: str) -> int:
    """All cores for the vectorised engine in this process (it forks one worker per thread), else 1."""
    if engine.startswith("vectorized") and executor == "local":
        from .._processes import available_cores

        return available_cores()
    return 1


# The optional STUDY argument's name in the usage line, in the style of the other commands' arguments: newer Typer
# releases (those with TyperArgument._usage_display_name) write an argument's name in lower case and bracket an
# optional one themselves ("[[STUDY]]" from a bracketed name); older ones print the name as given
_STUDY_METAVAR = "study" if hasattr(TyperArgument, "_usage_display_name") else "[STUDY]"


@app.command()
def run(
    study_arg: str | None = typer.Argument(
        None, metavar=_STUDY_METAVAR, show_default=False,
        help="Study file (.toml/.yaml/.json), preset name or study folder (resumed there); same as --config. A "
             "name that is both a preset and a path here is refused: give --preset NAME or ./NAME."),
    preset: str | None = typer.Option(
        None, "--preset", "-p", help="Built-in study (learnact list presets): paper, headline, families or "
                                     "suite (never a file or folder of that name). Default: paper, or the study "
                                     "already in --out."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Study file (.toml/.yaml/.json)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Study folder; rerunning into it resumes (default: a new folder, printed)."),
    engine: str = typer.Option(
        DEFAULT_ENGINE, "--engine", help="Training engine (an unknown name lists the valid ones)."),
    executor: str = typer.Option(
        "local", "--executor", "-x", help=f"Where runs train: {' | '.join(EXECUTORS)}."),
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="Worker processes for --executor processes (default: CPU count)."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask scheduler address for --executor dask, e.g. tcp://HOST:8786."),
    connect_timeout: float = typer.Option(
        DEFAULT_CONNECT_TIMEOUT_S, "--connect-timeout", help="Seconds to wait for the Dask scheduler."),
    group_size: int | None = typer.Option(
        None, "--group-size", help="Most runs per task (default: 1 for sequential, else split per worker)."),
    force: bool = typer.Option(False, "--force", help="Retrain runs that are already finished."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display (errors still print)."),
    threads: int | None = typer.Option(
        None, "--threads", help="Threads per task (default: all cores for the local vectorised engine, whose "
                                "stacks then train in that many worker processes; else 1, fastest for small MLPs)."),
    data: str | None = typer.Option(
        None, "--data", help="Train on this data instead of the study's: a CSV or Parquet file, or a data set name "
                             "(learnact list datasets)."),
    target: str | None = typer.Option(
        None, "--target", help="Label column of --data (default: its last column)."),
    one_hot: bool = typer.Option(
        False, "--one-hot", help="One-hot encode text feature columns (fitted on each training part)."),
    impute: str | None = typer.Option(
        None, "--impute", help="Fill missing feature values: median | most_frequent (fitted on each training part)."),
    task: str | None = typer.Option(
        None, "--task", help="classification | regression: what --data's target column holds (default: "
                             "classification, or the named data set's own task)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Build the report pack at the end."),
    pdf: bool = typer.Option(False, "--pdf", help="Also compile report.pdf (needs latexmk)."),
    plugin: list[str] | None = typer.Option(
        None, "--plugin", help="Import this module (e.g. mypkg.acts, registering your candidates) before the study "
                               "and in every worker; repeat for several. Recorded in study.json."),
    device: str = typer.Option(
        "cpu", "--device", help="Where runs train: cpu | cuda | auto (cuda if available); off the CPU only the "
                                "sequential engine trains. Not part of the runs' identity."),
) -> None:
    """Run a study (default: the paper's full study), resumably, and print its leaderboard.

    The study is STUDY, --config or --preset (one of them), else the study already in --out, else the paper's.
    """
    from ..experiment import load_study
    from ..names import ENGINES

    if pdf and not report:  # as --workers without --executor processes: an option that would do nothing
        raise ValueError("--pdf compiles the report, and --no-report builds none; drop one of them")
    # the data helper starts now, importing scikit-learn while this process reads the study; it gets the study
    # once it is checked (below), or ends unused
    from ..experiment.run_splits import discard_early, prefetch_inputs, start_early

    overlap = executor == "local" and "torch" not in sys.modules
    if overlap and not plugin:  # a plugin's data sets are known once it is imported (below)
        start_early()
    try:
        # a wrong study file, engine or number is reported before torch and the training code load (about 3 s)
        source, described = _study_source(preset, config, out, study_arg)
        from ..store import is_study_folder

        if out is None and isinstance(source, Path) and is_study_folder(source):
            out = source  # a study folder given as the study: resume it there, not in a new folder
        if plugin:  # before the study: its variants may name the plugins' candidates
            from ..plugins import import_plugins

            try:
                import_plugins(plugin)
            except ValueError as exc:
                raise ValueError(f"--plugin: {exc}") from None
        study = load_study(source)
        if plugin:
            study = study.model_copy(update={"plugins": tuple(dict.fromkeys((*study.plugins, *plugin)))})
        if data is not None or target is not None or one_hot or impute is not None or task is not None:
            from ..experiment.grid import with_data

            study = with_data(study, data, target, one_hot=one_hot or None, impute=impute, task=task)
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(sorted(ENGINES))}")
        _check_import_paths(study)
        if threads is None:
            threads = _default_threads(engine, executor)
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        most = _most_threads(executor)
        if threads > most:
            why = f"4 per core of the {most // 4} this process may use" if executor == "local" else "per task"
            raise ValueError(f"--threads {threads} is more than learnact takes (at most {most}, {why}); give fewer, or "
                             f"leave it out for the default")
        if group_size is not None and group_size < 1:
            raise ValueError(f"--group-size must be >= 1, got {group_size}")
        folder = out if out is not None else default_out(study.name)
        _check_out(folder)
    except BaseException:
        discard_early()  # the early data helper, if any, ends with the refused command's one-line error
        raise
    # The study's data is checked and split in a helper process while this one imports torch and the training
    # code (about 1 s sooner on 2 cores: this process never imports scikit-learn). Only where the runs train here.
    if overlap and "torch" in sys.modules:  # a plugin or an import-path candidate loaded it: the work is here
        overlap = False
        discard_early()
    with prefetch_inputs(study) if overlap else contextlib.nullcontext():
        with loading():  # torch and the training code, with no collection walking them as they load
            if not study.plugins and device == "cpu":  # a plugin's code may use anything of torch's (and a GPU
                # run was not checked without them): those get torch whole
                from .._torch_import import import_torch

                import_torch()  # without its meta-tensor kernels, loaded on first use (13% less import)
            from ..evaluation import tidy_results, write_results
            from ..evaluation.aggregate import leaderboard, seed_aggregates
            from ..experiment.engines import when_trained
            from ..experiment.executors import open_executor
            from ..experiment.runner import LOG_FILE, run_study
            from ..store import LEADERBOARD_FILE, atomic_write
            from ..training.scheduling import while_stacks_train
            from .display import diverged_lines, print_leaderboard, print_suite
            from .errors import state
            from .progress import study_progress

        state.writes_to = folder
        state.log_file = folder / LOG_FILE  # an internal error's traceback goes there (once the study has one)
        # without --out the same command makes a new folder: the way back into this one names it
        rerun = "rerun" if out is not None else f"rerun with --out {folder}"
        state.interrupted = f"interrupted; finished runs are kept, {rerun} to resume"
        state.after_full_disk = f"finished runs are kept, {rerun} to resume"
        with open_executor(executor, workers=workers, scheduler=scheduler,
                           connect_timeout_s=connect_timeout) as pool:
            note = (f"study {study.name!r} from {described}; folder {folder} (log: {folder / 'study.log'}); "
                    f"executor {pool.description}")
            with study_progress(quiet) as progress:
                warm = _WarmUp(report, len(study.runs()), bool(study.datasets))
                with when_trained(warm.trained), while_stacks_train(warm.preload), _resume_hint(out is None, folder):
                    result = run_study(study, folder, engine=engine, executor=pool, group_size=group_size,
                                       threads=threads, force=force, progress=warm.on_written(
                                           _announced(progress, note)), device=device)
    if result.superseded:
        _note(quiet, f"{len(result.superseded)} finished runs of an earlier study in this folder are not part of "
                     f"this one; moved to {folder / 'superseded'}")
    if result.restored:
        _note(quiet, f"{len(result.restored)} finished runs this study plans again were moved back from "
                     f"{folder / 'superseded'} (not retrained)")
    if result.foreign:
        _note(quiet, f"left alone {len(result.foreign)} entries under {folder / 'runs'} that learnact did not "
                     f"write: {', '.join(result.foreign)}")
    tidy = tidy_results(folder)  # the one table behind the terminal leaderboard, leaderboard.csv and the report
    aggregates = seed_aggregates(tidy) if not study.datasets else None  # their seed statistics, computed once
    table = leaderboard(tidy, aggregates=aggregates)
    with atomic_write(folder / LEADERBOARD_FILE) as tmp:
        table.to_csv(tmp, index=False)
    write_results(folder, table=tidy)
    # the leaderboard as soon as training ends; the report pack builds after it
    counts = f"({result.n_trained} trained, {result.n_skipped} already done)"
    if "dataset" in table.columns:  # a suite: the summary over data sets (leaderboard.csv has each data set's)
        print_suite(tidy, title=f"{study.name}: {len(study.variants)} variants x {len(study.seeds)} seeds x "
                                 f"{table['dataset'].nunique()} data sets {counts}")
    else:
        print_leaderboard(table, title=f"{study.name}: {len(study.variants)} variants x {len(study.seeds)} seeds "
                                       f"{counts}")
    if not table.empty and table["n_diverged"].sum() > 0:  # which seeds diverged, at which epoch and why
        for line in diverged_lines(tidy, folder):
            print(f"diverged:     {line}")
    print(f"study folder: {folder}")
    print(f"statistics:   learnact compare {folder}", flush=True)
    if report:
        with loading():  # matplotlib and the report's code
            from ..reporting import build_report

        _note(quiet, "building the report pack (figures, tables, report.tex) ...")
        from .progress import report_progress

        report_dir = build_report(folder, pdf=pdf, tidy=tidy, aggregates=aggregates, workers="auto",
                                  progress=report_progress(quiet))
        print(f"report:       {report_dir / 'index.md'}  (HTML: {report_dir / 'index.html'}; LaTeX: "
              f"{report_dir / 'report.tex'})")
