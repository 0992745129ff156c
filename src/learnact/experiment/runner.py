"""Run a study: plan runs, skip finished ones, train the rest on an executor, store results.

The runner holds the study folder's lock for the whole session, writes the
resolved config (``study.json``), removes half-written runs, moves runs the
study no longer plans to ``superseded/``, and then keeps a few groups of runs
in flight on a :class:`concurrent.futures.Executor`. Each group's artefacts
come back to this process and are written to the run store as soon as the
group finishes, so an interrupted study keeps everything that finished.
Every event also goes to ``study.log`` in the study folder.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

from .. import store
from ..config import RunConfig, StudyConfig
from ..exceptions import ConfigError, DataError, LearnactError, RunStoreError
from ..names import DEFAULT_ENGINE, FAST_ENGINES
from ..store import LOG_FILE, STUDY_FILE  # the study folder's files; re-exported for older imports
from .engines import ENGINES, STREAM_KEY, engine_device
from .executors import ExecutorPool, InProcessExecutor, run_group
from .grid import study_to_dict
from .lock import study_lock
from .run_splits import DATA_FILE_KEY, check_inputs, data_fingerprints

__all__ = ["DEFAULT_ENGINE", "LOG_FILE", "STUDY_FILE", "RunFailedError", "StudyResult", "append_to_log",
           "check_data_unchanged", "check_engine_unchanged", "check_inputs", "plan_groups", "run_study"]


Progress = Callable[[int, int, str], None]

_WORKER_LOST = ("BrokenProcessPool", "KilledWorker", "CommClosedError")


class RunFailedError(RuntimeError):
    """Training or storing a group of runs raised an unexpected error: a bug, not bad input.

    The original exception is the ``__cause__``; its traceback is in the study
    log, on a line naming the runs. Finished runs are kept.

    Attributes:
        run_ids: Ids of the runs of the failing task (one for most engines).
        log_file: The study log holding the traceback.
    """

    def __init__(self, run_ids: Sequence[str], log_file: Path, cause: BaseException) -> None:
        self.run_ids = tuple(run_ids)
        self.log_file = log_file
        super().__init__(f"{self.describe_runs()} failed: {type(cause).__name__}: {cause}")

    def describe_runs(self) -> str:
        """``run ID``, or ``a task of N runs (ID, ID, ID, ...)``."""
        if len(self.run_ids) == 1:
            return f"run {self.run_ids[0]}"
        shown = ", ".join(self.run_ids[:3]) + (", ..." if len(self.run_ids) > 3 else "")
        return f"a task of {len(self.run_ids)} runs ({shown})"


@dataclass(frozen=True)
class StudyResult:
    """Outcome of :func:`run_study`.

    Attributes:
        folder: The study folder.
        n_runs: Runs in the study.
        n_trained: Runs trained by this call.
        n_skipped: Runs already finished on disk and skipped.
        trained: Ids of the runs trained by this call, in the order written.
        superseded: Ids of finished runs moved to ``superseded/`` (not in this study).
        restored: Ids of runs moved back from ``superseded/`` (planned again, not retrained).
        n_cleaned: Half-written run folders (and temporary files) removed before training.
        foreign: Names of the entries under ``runs/`` that learnact did not write; left alone.
    """

    folder: Path
    n_runs: int
    n_trained: int
    n_skipped: int
    trained: tuple[str, ...] = ()
    superseded: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    n_cleaned: int = 0
    foreign: tuple[str, ...] = ()


def _stack_key(run: RunConfig) -> tuple[object, ...]:
    """Runs that may share a task: same data settings and the same backbone shape."""
    return (run.data, run.backbone)


def plan_groups(runs: Sequence[RunConfig], engine: str = DEFAULT_ENGINE, n_slots: int = 1,
                group_size: int | None = None) -> list[list[RunConfig]]:
    """Split runs into groups; each group is one task for an executor.

    Args:
        runs: Runs to train, in plan order.
        engine: The engine name. ``"sequential"`` gains nothing from grouping,
            so its groups are single runs (written one by one).
        n_slots: Tasks the executor runs at once; other engines split each
            set of compatible runs into about this many groups.
        group_size: Most runs per group (overrides the automatic choice).

    Returns:
        Groups in plan order; runs in a group share data settings and backbone.
    """
    if group_size is not None and (isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1):
        raise ConfigError(f"group size must be an integer >= 1, got {group_size!r}")
    buckets: dict[tuple[object, ...], list[RunConfig]] = {}
    for run in runs:
        buckets.setdefault(_stack_key(run), []).append(run)
    groups: list[list[RunConfig]] = []
    for bucket in buckets.values():
        size = group_size or (1 if engine == "sequential" else math.ceil(len(bucket) / max(1, n_slots)))
        groups.extend(bucket[i:i + size] for i in range(0, len(bucket), size))
    return groups


@dataclass
class _Session:
    """Bookkeeping of one call (the log and what was written)."""

    folder: Path
    total: int
    done: int
    progress: Progress | None
    log: logging.Logger
    trained: list[str] = field(default_factory=list)
    data_files: dict[str, dict[str, object]] = field(default_factory=dict)
    """The fingerprint of each CSV / Parquet data set, by path (:func:`~.run_splits.data_fingerprints`)."""

    def write(self, group: Sequence[RunConfig], artifacts: Sequence[store.RunArtifacts]) -> None:
        expected = sorted(r.run_id for r in group)
        got = sorted(a.run.run_id for a in artifacts)
        if got != expected:
            raise RunStoreError(f"the engine returned runs {got} for a task of runs {expected}; "
                                f"this is a bug in the engine, please report it")
        for art in artifacts:  # the file's content, which the run id (its path) does not hold
            if art.run.data.dataset in self.data_files:
                art.preprocessing[DATA_FILE_KEY] = self.data_files[art.run.data.dataset]
        for art, _folder in zip(artifacts, store.write_runs(self.folder, artifacts), strict=True):
            self.done += 1
            self.trained.append(art.run.run_id)
            m = art.metrics
            if m.get("status") == "diverged":
                scores = f"diverged ({m.get('diverged_reason')})"
            else:
                shown = ("r2", "rmse") if "rmse" in m else ("accuracy", "roc_auc")
                scores = " ".join(f"{k}={float(m.get(k, float('nan'))):.4f}" for k in shown)
            self.log.info("trained %s (%d/%d) %s epochs=%s", art.run.run_id, self.done, self.total, scores,
                          m.get("epochs_run", "?"))
            if self.progress:
                self.progress(self.done, self.total, art.run.run_id)


class _LogFile(logging.FileHandler):
    """``study.log``: a line that cannot be written (a full disk) is dropped, never printed as a traceback.

    The write that failed for the same reason raises the study's own one-line error.
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


def _study_logger(folder: Path) -> logging.Logger:
    """A logger of its own (outside the logging tree) that appends to ``study.log``."""
    log = logging.Logger(f"learnact.study:{folder}", logging.INFO)
    handler = _LogFile(folder / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    return log


def _close(log: logging.Logger) -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


def append_to_log(log_file: Path, message: str) -> None:
    """Append ``message`` as an ERROR line to a study log (the CLI logs internal errors this way)."""
    log = _study_logger(Path(log_file).parent)
    try:
        log.error("%s", message)
    finally:
        _close(log)


def _pump(session: _Session, pool: ExecutorPool, groups: list[list[RunConfig]], engine: str,
          threads: int, device: str = "cpu") -> None:
    """Keep up to ``pool.max_in_flight`` groups in flight; write each group as it finishes."""
    pending: dict[Future[list[store.RunArtifacts]], list[RunConfig]] = {}
    queue = iter(groups)
    failing: list[RunConfig] = []  # the group being submitted or written, for the error report
    try:
        while True:
            while len(pending) < pool.max_in_flight:
                group = next(queue, None)
                if group is None:
                    break
                failing = group
                args = (engine, group, threads) if device == "cpu" else (engine, group, threads, device)
                pending[pool.executor.submit(run_group, *args)] = group
            failing = []
            if not pending:
                return
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in [f for f in pending if f in finished]:  # submission order
                failing = pending.pop(future)
                session.write(failing, future.result())
            failing = []
    except BaseException as exc:
        for future in pending:
            future.cancel()
        if isinstance(exc, KeyboardInterrupt):
            session.log.warning("interrupted; %d runs finished, rerun to resume", session.done)
            raise
        ids = [r.run_id for r in failing]
        which = f" ({'run' if len(ids) == 1 else 'runs'} {', '.join(ids)})" if ids else ""
        session.log.error("stopped: %s%s\n%s", exc, which,
                          traceback.format_exc().rstrip())
        if type(exc).__name__ in _WORKER_LOST:
            raise LearnactError(f"a worker stopped while training ({type(exc).__name__}: {exc}); it may have run "
                                f"out of memory. Finished runs are kept: rerun the same command to resume") from exc
        if isinstance(exc, ImportError) and pool.description.startswith("dask"):
            raise LearnactError(f"a task failed to import on a Dask worker ({exc}); install the same learnact "
                                f"version on every worker (pip install 'learnact[cluster]'), then rerun to "
                                f"resume") from exc
        if ids and isinstance(exc, Exception) and not isinstance(exc, (LearnactError, OSError)):
            raise RunFailedError(ids, session.folder / LOG_FILE, exc) from exc
        raise


def run_study(
    study: StudyConfig,
    folder: Path,
    *,
    engine: str = DEFAULT_ENGINE,
    executor: ExecutorPool | Executor | None = None,
    group_size: int | None = None,
    threads: int = 1,
    force: bool = False,
    progress: Progress | None = None,
    device: str = "cpu",
) -> StudyResult:
    """Train every run of ``study`` that is not finished in ``folder``.

    Args:
        study: The validated study.
        folder: Study folder (created if missing; its parent must exist).
        engine: Name in :data:`~learnact.experiment.engines.ENGINES`.
        executor: Where groups train: an :class:`~learnact.experiment.executors.ExecutorPool`
            from :func:`~learnact.experiment.executors.open_executor`, any
            :class:`concurrent.futures.Executor` (one task at a time is kept in
            flight), or ``None`` for this process.
        group_size: Most runs per task (default: see :func:`plan_groups`).
        threads: Torch threads per task.
        force: Retrain runs even if finished.
        progress: Called as ``progress(done, total, run_id)`` after each run
            is written, and once at the start with ``run_id=""``.
        device: Where runs train, ``"cpu" | "cuda" | "auto"``: a run-time
            choice, not part of any run's identity (only the sequential engine
            trains off the CPU; :func:`~learnact.experiment.engines.engine_device`).

    Raises:
        ConfigError: Unknown engine, bad option, or the folder's parent missing.
        ValueError: A bad ``device``, or CUDA where there is none.
        StudyInUseError: Another process is running a study in ``folder``.
        RunStoreError: A name the study folder needs is in the way (a folder named ``.lock``, a file named
            ``runs``: :func:`~learnact.store.check_study_entries`), or its ``.lock`` is not one learnact wrote.
        DataError: A CSV / Parquet data set is not the file the study's finished runs were trained on
            (:func:`check_data_unchanged`); nothing is written.
        ConfigError: The study's finished runs were trained by the other kind of engine, exact or fast
            (:func:`check_engine_unchanged`); nothing is written.
        RunStoreError: A run folder to be replaced (``force``, or half-written) holds files learnact did not
            write, or is not a run folder learnact wrote (:func:`~learnact.store.check_replaceable`); nothing
            is written.
    """
    if not isinstance(study, StudyConfig):  # a dict had failed deep inside with "'dict' object has no attribute"
        raise TypeError(f"run_study takes a StudyConfig (study_from_dict(DICT) or load_study(PATH)), got "
                        f"{type(study).__name__}")
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; valid: {', '.join(sorted(ENGINES))}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
    device = str(engine_device(engine, device))
    if executor is None:
        pool = ExecutorPool(InProcessExecutor(), 1, "local: this process")
    elif isinstance(executor, ExecutorPool):
        pool = executor
    else:
        pool = ExecutorPool(executor, 1, type(executor).__name__)
    if group_size is not None and (isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1):
        raise ConfigError(f"group size must be an integer >= 1, got {group_size!r}")
    runs = study.runs()
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise ConfigError(f"output folder's parent {str(folder.parent)!r} does not exist; create it first")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output folder {str(folder)!r} is a file; give a folder (new, or a study to resume)")
    check_inputs(study)  # every problem the config and the data reveal, before anything is written
    data_files = data_fingerprints(study)  # each file hashed once per session, recorded with every run
    store.check_study_entries(folder)  # a folder named .lock or study.log, a file named runs: nothing written
    try:
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise store.write_error(folder, exc) from exc
        with study_lock(folder):
            log = _study_logger(folder)
            try:
                return _run_locked(study, folder, runs, engine, pool, group_size, threads, force, progress, log,
                                   device, data_files)
            finally:
                _close(log)
    except store.StoreWriteError as exc:
        if not str(exc).endswith(store.StoreWriteError.RERUN):
            raise
        raise store.StoreWriteError(f"{exc} to resume (finished runs are kept)") from exc


def _run_locked(study: StudyConfig, folder: Path, runs: list[RunConfig], engine: str, pool: ExecutorPool,
                group_size: int | None, threads: int, force: bool, progress: Progress | None,
                log: logging.Logger, device: str = "cpu",
                data_files: dict[str, dict[str, object]] | None = None) -> StudyResult:
    start = time.perf_counter()
    data_files = data_files or {}
    if not force:  # before anything is written: a refused study is left as it was
        check_data_unchanged(folder, runs, data_files)
        check_engine_unchanged(folder, runs, engine)
    for run in runs:  # a run folder to be replaced must hold only what learnact wrote (a user's notes stay)
        if force or not store.is_done(folder, run):
            store.check_replaceable(store.run_dir(folder, run), "--force" if force else "retraining it")
    store.write_json_atomic(folder / STUDY_FILE, study_to_dict(study))
    n_cleaned = store.clean_partial(folder)
    foreign = store.foreign_entries(folder)
    ids = {r.run_id for r in runs}
    restored = store.restore_runs(folder, ids)
    superseded = store.retire_runs(folder, ids)
    todo = [r for r in runs if force or not _finished(folder, r)]
    groups = plan_groups(todo, engine, pool.n_slots, group_size)
    log.info("session start: study %r, %d runs: %d finished, %d to train%s; engine %s, executor %s, %d tasks",
             study.name, len(runs), len(runs) - len(todo), len(todo), " (--force)" if force else "", engine,
             pool.description, len(groups))
    if n_cleaned:
        log.info("removed %d half-written run folders", n_cleaned)
    if foreign:
        log.info("left alone %d entries under %s/ that learnact did not write: %s", len(foreign), store.RUNS_DIR,
                 ", ".join(foreign))
    if superseded:
        log.info("moved %d finished runs this study does not plan to %s/: %s", len(superseded),
                 store.SUPERSEDED_DIR, ", ".join(superseded))
    if restored:
        log.info("moved %d runs back from %s/: %s", len(restored), store.SUPERSEDED_DIR, ", ".join(restored))
    session = _Session(folder, len(runs), len(runs) - len(todo), progress, log, data_files=data_files)
    if progress:
        progress(session.done, len(runs), "")
    _pump(session, pool, groups, engine, threads, device)
    log.info("session end: trained %d runs in %.1f s", len(session.trained), time.perf_counter() - start)
    return StudyResult(folder, len(runs), len(todo), len(runs) - len(todo), tuple(session.trained),
                       tuple(superseded), tuple(restored), n_cleaned, tuple(foreign))


def _finished(folder: Path, run: RunConfig) -> bool:
    """True for a run with DONE whose files match its manifest; a tampered run raises (never retrained blindly)."""
    if not store.is_done(folder, run):
        return False
    store.verify_run(store.run_dir(folder, run))
    return True


def check_data_unchanged(folder: Path, runs: Sequence[RunConfig], data_files: dict[str, dict[str, object]]) -> None:
    """Refuse to resume a study whose CSV / Parquet data set is not the file its finished runs were trained on.

    A run id holds the data set's path as written, so an edited file (or a relative path that names another file
    from another working folder) gave runs of the same ids trained on other data, and the tables paired and
    averaged them as one data set. Each finished run the study keeps (under ``runs/``, or in ``superseded/`` to
    be moved back) records the file's fingerprint (:data:`~.run_splits.DATA_FILE_KEY` in its
    ``preprocessing.json``); a run recorded before learnact kept it has none and is not checked.

    Args:
        folder: The study folder.
        runs: The runs the study plans.
        data_files: The current fingerprint of each data file, by path (:func:`~.run_splits.data_fingerprints`).

    Raises:
        DataError: One line naming the first changed file, how many finished runs used other content, and the
            fixes.
        RunStoreError: A kept run's ``preprocessing.json`` is corrupt.
    """
    if not data_files:
        return
    by_id = {r.run_id: r for r in runs if r.data.dataset in data_files}
    changed: dict[str, list[dict[str, object]]] = {}
    for rid, run_folder in store.kept_runs(folder, set(by_id)).items():
        dataset = by_id[rid].data.dataset
        recorded = store.read_preprocessing(run_folder).get(DATA_FILE_KEY)
        if not isinstance(recorded, dict):
            continue  # recorded before fingerprints were kept: cannot be checked
        now = data_files[dataset]
        if (recorded.get("size"), recorded.get("sha256")) != (now["size"], now["sha256"]):
            changed.setdefault(dataset, []).append(recorded)
    if not changed:
        return
    dataset, olds = next(iter(changed.items()))
    now, old, n = data_files[dataset], olds[0], len(olds)
    runs_text = f"{n} finished run{'s' if n != 1 else ''} of study folder {str(folder)!r}"
    was = f"{old.get('size')} bytes, sha256 {str(old.get('sha256'))[:12]}"
    is_now = f"{now['size']} bytes, sha256 {str(now['sha256'])[:12]}"
    more = f" (and {len(changed) - 1} more data file{'s' if len(changed) > 2 else ''})" if len(changed) > 1 else ""
    if old.get("path") in (None, now["path"]):
        problem = (f"data file {dataset!r} ({str(now['path'])!r}) changed since {runs_text} were trained on it "
                   f"({was} then, {is_now} now){more}")
        fix = "restore the file those runs used"
    else:
        problem = (f"data file {dataset!r} names {str(now['path'])!r} ({is_now}) from this working folder, not "
                   f"the {str(old['path'])!r} ({was}) that {runs_text} were trained on{more}")
        fix = "run from the folder those runs ran in (or restore that file)"
    raise DataError(f"{problem}; nothing was trained, as the study would mix two data sets: {fix}, or run into a "
                    f"new folder (--out NEW_FOLDER)")


def check_engine_unchanged(folder: Path, runs: Sequence[RunConfig], engine: str) -> None:
    """Refuse to resume a study whose finished runs were trained by the other kind of engine, exact or fast.

    A run id hashes the run's settings, not the engine: the exact engines (``sequential``, ``vectorized``) give
    bit-identical runs, but a fast one (:data:`~learnact.names.FAST_ENGINES`) draws another random stream, so
    resuming with the other kind silently mixed the two in one study. Each fast run records
    :data:`~.engines.STREAM_KEY` in its ``metrics.json``; the runs the study keeps (under ``runs/``, or in
    ``superseded/`` to be moved back) are compared with ``engine``. Fast runs written before learnact recorded
    this look exact.

    Raises:
        ConfigError: One line naming the folder, how many finished runs are of the other kind, and the fixes.
        RunStoreError: A kept run's ``metrics.json`` is corrupt.
    """
    fast = engine in FAST_ENGINES
    other = sum((store.read_metrics(run_folder).get(STREAM_KEY) == "fast") != fast
                for run_folder in store.kept_runs(folder, {r.run_id for r in runs}).values())
    if not other:
        return
    exact = [e for e in ENGINES if e not in FAST_ENGINES]
    kinds = (f"a fast engine ({', '.join(FAST_ENGINES)})", f"the exact engines ({', '.join(exact)})")
    theirs, asked = kinds if not fast else kinds[::-1]
    use = FAST_ENGINES[0] if not fast else DEFAULT_ENGINE
    raise ConfigError(f"{other} finished run{'s' if other != 1 else ''} of study folder {str(folder)!r} "
                      f"{'were' if other != 1 else 'was'} trained by {theirs}, not bit-comparable with runs of "
                      f"{asked} such as --engine {engine}; nothing was trained, as the study would mix the two: "
                      f"rerun with --engine {use}, run into a new folder (--out NEW_FOLDER), or add --force to "
                      f"retrain every run")
