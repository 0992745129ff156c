"""The run store (the on-disk format every stage reads): one folder per run, written atomically, sealed by a manifest.

Layout of a study folder::

    study.json              resolved study config (a study file: `learnact run -c` reads it); a folder is a
                            study folder only when its study.json has this shape (:func:`is_learnact_study`)
                            or its runs/ holds runs learnact wrote (:func:`holds_runs`)
    study.log               one line per event of every session on this folder
    .lock                   held (flock) by the process running the study; holds its pid, host and start
                            time (:data:`LOCK_TEXT`); never written through a link or over a user's file
    runs/<run_id>/          .learnact-run (written first), config.json,
                            history.jsonl, metrics.json, predictions.csv,
                            gates.json, weights.safetensors, preprocessing.json
                            (with ``data_file``: size and SHA-256 of a CSV /
                            Parquet data set, checked on resume by the runner),
                            MANIFEST.json, DONE (written last)
    superseded/<run_id>/    finished runs the current study no longer plans
                            (moved back if a later study plans them again;
                            ``<run_id>~2``, ``~3``, ... when an id is there already)

Run folder format 2 (this version):

- ``.learnact-run`` holds the run id and a newline. It is the first file
  written, so a folder is provably learnact's own (and may be removed when
  half-written) only when its name is a run id (:data:`RUN_ID_PATTERN`) and
  its marker names that id.
- ``MANIFEST.json`` lists every other file with its size and SHA-256:
  ``{"format": "learnact-run/2", "run_id": ..., "files": {name: {"size": int,
  "sha256": hex}}}``.
- ``DONE`` holds the SHA-256 (hex) of ``MANIFEST.json`` and a newline; it is
  written last.
- A finished run is a folder named by a run id with ``DONE`` and the marker or
  the manifest (a user's folder with only a file named ``DONE`` is not one),
  and its manifest must name the run its folder is named after (a copy of, or
  link to, another run's folder is corrupt).
- Files a user keeps inside a run folder (not in :data:`RUN_FILES` nor its
  manifest) are never removed: replacing such a folder (``--force``, a
  half-written run redone) is refused, naming them (:func:`check_replaceable`).

Every reader here verifies what it reads: the manifest against ``DONE``, every
listed file's presence and size (once per process and manifest), and the
bytes it parses against their hash; then the values (probabilities in
[0, 1], metrics in range, class names matching ``n_classes``). A failed check
raises :class:`~learnact.exceptions.RunStoreError` naming the file and how to
retrain the run. :func:`verify_run` hashes every file (resume and predict do).
A folder with an empty ``DONE``, no marker and no manifest was written by
learnact 0.1 (format 1); its files cannot be verified, so it is refused with a
message saying how to retrain it (``learnact run --out STUDY --force``).

A run folder is first written under ``runs/.tmp-<run_id>-<pid>`` and renamed
into place, so a killed process never leaves a folder that looks finished; a
folder being replaced is first renamed to ``runs/.old-<run_id>-<pid>``. A
failed write (a full disk) removes its temporary folder before raising.
:func:`clean_partial` removes only what the store can prove it wrote: those
temporary names (an ``.old-`` folder whose replacement never arrived is moved
back instead), run folders carrying their own marker but no ``DONE``, and the
study folder's own temporary files (``.tmp-study.json-<pid>`` ...). Anything
else under ``runs/`` is left alone and listed by :func:`foreign_entries`; only
folders named by a run id count as runs (:func:`finished_runs`), so a user's
folder is never read, moved or removed. Writers of the study folder's own
files (``study.json``, ``results.csv``, ``leaderboard.csv``) go through
:func:`atomic_write`; an OS error while writing becomes one
:class:`~learnact.exceptions.RunStoreError` line (:func:`write_error`).

Changes from format 1 (learnact 0.1): the marker and the manifest are new,
``DONE`` is no longer empty, ``clean_partial`` no longer removes every entry
without ``DONE``, and a superseded run never replaces another.
Loading never unpickles: weights are safetensors, everything else is JSON/CSV.
"""

from __future__ import annotations

import errno as _errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._processes import available_cores, fork_map
from .config import RunConfig, dataset_label
from .exceptions import CheckpointError, RunStoreError

if TYPE_CHECKING:  # the run store reads and writes files; torch loads only to save or load weights
    import torch

__all__ = [
    "METRIC_RANGES",
    "RunArtifacts",
    "RUNS_DIR",
    "SUPERSEDED_DIR",
    "DONE",
    "MANIFEST",
    "MARKER",
    "RUN_FORMAT",
    "RUN_ID_PATTERN",
    "is_run_id",
    "run_dir",
    "is_done",
    "write_run",
    "write_runs",
    "RUN_FILES",
    "user_files",
    "check_replaceable",
    "verify_run",
    "read_run_config",
    "read_metrics",
    "read_history",
    "read_predictions",
    "read_gates",
    "read_preprocessing",
    "load_state",
    "is_diverged",
    "finished_runs",
    "clean_partial",
    "foreign_entries",
    "retire_runs",
    "restore_runs",
    "kept_runs",
    "write_json_atomic",
    "write_text_atomic",
    "atomic_write",
    "write_error",
    "StoreWriteError",
    "protected_folder",
    "check_output_path",
    "is_study_folder",
    "is_learnact_study",
    "output_file",
    "foreign_outputs",
    "holds_runs",
    "RESULTS_FILE",
    "LEADERBOARD_FILE",
    "REPORT_DIR",
    "REPORT_MARKER",
    "STUDY_OUTPUTS",
    "STUDY_FILE",
    "LOG_FILE",
    "LOCK_FILE",
    "LOCK_TEXT",
    "is_own_lock",
    "check_study_entries",
    "check_study_dir",
    "not_a_study_folder",
    "study_runs",
    "study_reference",
]

STUDY_FILE = "study.json"
"""The resolved study config in a study folder (a study file: ``learnact run -c`` reads it)."""
LOG_FILE = "study.log"
"""The study's log in a study folder."""
RUNS_DIR = "runs"
SUPERSEDED_DIR = "superseded"
RESULTS_FILE = "results.csv"
"""The study's tidy results table in a study folder (:mod:`learnact.evaluation.results`)."""
LEADERBOARD_FILE = "leaderboard.csv"
"""The study's leaderboard in a study folder (written by ``learnact run``)."""
REPORT_DIR = "report"
"""The report folder inside a study folder (``learnact report``'s default)."""
LOCK_FILE = ".lock"
"""The study folder's lock file (:func:`learnact.experiment.lock.study_lock`)."""
LOCK_TEXT = re.compile(r"(pid \d+ on [^\n]*, since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d)?")
"""What :func:`~learnact.experiment.lock.study_lock` writes in the lock file (nothing before it first writes)."""
STUDY_OUTPUTS = (STUDY_FILE, LOG_FILE, LOCK_FILE, RESULTS_FILE, LEADERBOARD_FILE, RUNS_DIR, SUPERSEDED_DIR,
                 REPORT_DIR)
"""Every name ``learnact run`` writes in a study folder."""
_STUDY_FOLDERS = {RUNS_DIR: "keeps the study's run folders", SUPERSEDED_DIR: "keeps the runs a study no longer plans"}
_STUDY_FILES = {STUDY_FILE: "writes the resolved study", LOG_FILE: "appends the study's log",
                LOCK_FILE: "writes the study's lock file", RESULTS_FILE: "writes the study's results table",
                LEADERBOARD_FILE: "writes the study's leaderboard"}
DONE = "DONE"
MANIFEST = "MANIFEST.json"
MARKER = ".learnact-run"
RUN_FORMAT = "learnact-run/2"

RUN_ID_PATTERN = re.compile(r'[^./\\:*?"<>| ][^/\\:*?"<>| ]*__s-?\d+__[0-9a-f]{10}')
"""What :attr:`RunConfig.run_id` looks like: ``<variant>__s<seed>__<10 hex digits>``."""

_TEMP_PATTERN = re.compile(r"\.(?P<kind>tmp|old)-(?P<rid>.+)-(?P<pid>\d+)")
# Temporary files of the study folder itself (this version and the one before).
_STUDY_TEMP_PATTERN = re.compile(r"\.tmp-(study\.json|results\.csv|leaderboard\.csv)-\d+|\.results\.csv\.tmp-\d+")
_SHA256 = re.compile(r"[0-9a-f]{64}")

#: Ranges of the metrics in metrics.json (NaN is always allowed: a diverged or degenerate run); a CSV of a user's
#: runs (``learnact compare RESULTS.csv``) is held to them too.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "roc_auc": (0.0, 1.0),
    "ece": (0.0, 1.0),
    "brier": (0.0, 2.0),
    "log_loss": (0.0, math.inf),
    "rmse": (0.0, math.inf),
    "mae": (0.0, math.inf),
    "r2": (-math.inf, 1.0),
    "n_params": (0.0, math.inf),
    "train_time_s": (0.0, math.inf),
    "best_epoch": (0.0, math.inf),
    "epochs_run": (0.0, math.inf),
    "peak_memory_mb": (0.0, math.inf),
}


@dataclass
class RunArtifacts:
    """Everything a run folder holds, in memory.

    Attributes:
        run: The resolved run config.
        metrics: Test metrics and costs (``n_params``, ``train_time_s``, ...).
        history: One dict per epoch (:class:`~learnact.training.EpochRecord`).
        predictions: Test rows: ``row``, ``y_true``, ``prob`` (or ``prob_<k>``)
            and, for input-dependent gates, ``gate<layer>_<candidate>``.
        gates: Per hidden layer: ``gate`` kind, ``candidates``, ``temperature``
            and static ``weights`` (``(c,)`` or ``(d, c)``; ``None`` for input gates).
        state: Model weights (``MLP.state_dict()``).
        preprocessing: Scaler statistics and split indices.
    """

    run: RunConfig
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    predictions: pd.DataFrame
    gates: list[dict[str, Any]]
    state: dict[str, torch.Tensor]
    preprocessing: dict[str, Any] = field(default_factory=dict)


def is_run_id(name: str) -> bool:
    """True when ``name`` has the form of a run id (:data:`RUN_ID_PATTERN`)."""
    return RUN_ID_PATTERN.fullmatch(name) is not None


def run_dir(study_dir: Path, run: RunConfig | str) -> Path:
    """Folder of a run inside a study folder."""
    rid = run if isinstance(run, str) else run.run_id
    return Path(study_dir) / RUNS_DIR / rid


def is_done(study_dir: Path, run: RunConfig | str) -> bool:
    """True when the run's folder exists with its DONE marker (not verified: see :func:`verify_run`)."""
    return (run_dir(study_dir, run) / DONE).is_file()


# ---------------------------------------------------------------- writing


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StoreWriteError(RunStoreError):
    """An OS error while writing (:func:`write_error`); where its fix is to rerun, the message ends in ``rerun the
    same command`` and :func:`~learnact.experiment.runner.run_study` adds ``to resume (finished runs are kept)``:
    only a study resumes (``predict --out``, a report, ``compare --csv`` write one file)."""

    #: The end of a message whose fix is to rerun.
    RERUN = "rerun the same command"


def write_error(path: Path, exc: OSError) -> StoreWriteError:
    """A one-line :class:`StoreWriteError` for an OS error while writing ``path`` (full disk, read-only, ...).

    The caller has already removed its temporary files; the message names the
    path, the reason and the fix.
    """
    code = _errno.errorcode.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == _errno.ENOSPC or exc.errno == getattr(_errno, "EDQUOT", -1):
        fix = f"free some space, then {StoreWriteError.RERUN}"
    elif exc.errno in (_errno.EROFS, _errno.EACCES, _errno.EPERM):
        fix = "make the folder writable or choose another output folder"
    elif exc.errno == _errno.ENAMETOOLONG:
        fix = "use a shorter folder, study or variant name"
    else:
        fix = f"fix the problem, then {StoreWriteError.RERUN}"
    return StoreWriteError(f"cannot write {str(path)!r}: {reason}{f' ({code})' if code else ''}; nothing half-written "
                         f"was left behind; {fix}")


@contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Write ``path`` through a temporary file beside it: ``with atomic_write(p) as tmp: write(tmp)``.

    The temporary file (``.tmp-<name>-<pid>``) is renamed over ``path`` when the
    block succeeds and removed when it fails, so a reader never sees half a file
    and a full disk leaves nothing behind.

    Raises:
        RunStoreError: An OS error (full disk, read-only folder, ...) while writing.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise


@contextmanager
def output_file(path: Path) -> Iterator[Path]:
    """Where to write a user-named output file (``predict --out``, ``compare --csv``): :func:`atomic_write`'s
    temporary file, or ``path`` itself where ``path`` is a symbolic link or exists and is no regular file.

    A rename replaces whatever has the name: ``--csv /dev/stdout`` replaced the ``/dev/stdout`` link with a
    regular file (every later write to it went to that file), and a link to the user's own file with a copy.
    Writing through the name instead goes where the link or the device leads.

    Raises:
        RunStoreError: An OS error while writing.
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        try:
            yield path
        except OSError as exc:
            raise write_error(path, exc) from exc
        return
    with atomic_write(path) as tmp:
        yield tmp


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` through a temporary file and a rename.

    Raises:
        RunStoreError: An OS error while writing; no temporary file is left.
    """
    write_text_atomic(path, json.dumps(payload, indent=1, default=_json_default) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename (:func:`atomic_write`).

    Raises:
        RunStoreError: An OS error while writing; no temporary file is left.
    """
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _serialise(art: RunArtifacts) -> dict[str, bytes]:
    """The bytes of every data file of a run folder, by name."""
    from safetensors.torch import save

    rid = art.run.run_id
    skip = ({"suite_dataset"} if art.run.suite_dataset is None else set()) | (set() if art.run.plugins else {"plugins"})
    # config.json as before suites and plugins existed, unless the run has them
    cfg = {"run_id": rid, **art.run.model_dump(mode="json", exclude=skip)}
    history = _json_lines(art.history)
    return {
        MARKER: f"{rid}\n".encode(),
        "config.json": json.dumps(cfg, indent=1).encode(),
        "history.jsonl": history.encode(),
        "metrics.json": json.dumps(art.metrics, indent=1, default=_json_default).encode(),
        "predictions.csv": _csv_text(art.predictions).encode(),
        "gates.json": json.dumps(art.gates, indent=1, default=_json_default).encode(),
        "preprocessing.json": json.dumps(art.preprocessing, default=_json_default).encode(),
        "weights.safetensors": save({k: v.contiguous() for k, v in art.state.items()}, metadata={"run_id": rid}),
    }


def _json_lines(records: Sequence[Any]) -> str:
    """``records`` as JSON lines: ``json.dumps(record)`` of each (numpy values as Python's), a newline after each.

    The records are encoded in one call of the JSON encoder and the text is
    cut between them (at the ``"}, {"`` between two objects): a run's
    history is hundreds of small dicts, and one encoder call per record cost
    most of writing a run folder. Where that cut does not give one piece per
    record (a record that is not a dict, or a string holding ``"}, {"``), each
    record is encoded on its own. The text is the same either way.
    """
    if not records:
        return ""
    if all(isinstance(r, dict) and r for r in records):
        pieces = json.dumps(list(records), default=_json_default)[1:-1].split("}, {")
        if len(pieces) == len(records):  # the first piece keeps its "{", the last its "}"
            return "}\n{".join(pieces) + "\n"
    return "".join(json.dumps(r, default=_json_default) + "\n" for r in records)


def _csv_text(frame: pd.DataFrame) -> str:
    """``frame.to_csv(index=False)``, written without pandas' CSV writer where every column allows it.

    Integer and boolean columns are written as ``str`` writes their values,
    float64 columns as ``repr`` does (the shortest text that reads back to
    the same float, as pandas writes it) and NaN as an empty field. Any
    other column type, or a column name CSV would have to quote, goes
    through pandas. A run's predictions are a few hundred rows, and pandas'
    writer took about 2 ms a run of set-up.
    """
    names = [str(c) for c in frame.columns]
    if frame.empty or any(set(n) & set(',"\r\n') or n != n.strip() or not n for n in names):
        return frame.to_csv(index=False)
    columns: list[list[str]] = []
    for name, dtype in zip(frame.columns, frame.dtypes, strict=True):
        if not isinstance(dtype, np.dtype):  # pandas' own types (nullable integers, categories, ...)
            return frame.to_csv(index=False)
        if dtype.kind in "iub":
            columns.append([str(v) for v in frame[name].to_numpy().tolist()])
        elif dtype == np.float64:
            columns.append(["" if v != v else repr(v) for v in frame[name].to_numpy().tolist()])
        else:
            return frame.to_csv(index=False)
    return ",".join(names) + "\n" + "".join(",".join(row) + "\n" for row in zip(*columns, strict=True))


def _manifest_bytes(run_id: str, files: dict[str, bytes]) -> bytes:
    entries = {name: {"size": len(data), "sha256": _sha256(data)} for name, data in sorted(files.items())}
    return (json.dumps({"format": RUN_FORMAT, "run_id": run_id, "files": entries}, indent=1) + "\n").encode()


def _marker_id(folder: Path) -> str | None:
    """The run id in the folder's marker, or ``None`` when it has none (or an unreadable one)."""
    try:
        text = (folder / MARKER).read_bytes()[:1000].decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text.strip() or None


def _is_own_run(folder: Path) -> bool:
    """True for a run folder learnact wrote: named by a run id and marked with it (or a format-1 finished run)."""
    if folder.is_symlink() or not folder.is_dir() or not is_run_id(folder.name):
        return False
    marker = _marker_id(folder)
    if marker is not None:
        return marker == folder.name
    if not (folder / DONE).is_file():
        return False
    try:  # format 1: no marker; its config.json names the run
        return json.loads((folder / "config.json").read_text()).get("run_id") == folder.name
    except (OSError, ValueError, AttributeError):
        return False


RUN_FILES = frozenset({MARKER, "config.json", "history.jsonl", "metrics.json", "predictions.csv", "gates.json",
                       "preprocessing.json", "weights.safetensors", MANIFEST, DONE})
"""Every name learnact writes in a run folder (formats 1 and 2)."""


def user_files(folder: Path) -> list[str]:
    """Names of the entries of a run folder that learnact did not write (not in :data:`RUN_FILES` nor listed in
    its manifest), sorted: a user's notes kept beside a run's files."""
    folder = Path(folder)
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return []
    listed: set[str] = set()
    try:
        files = json.loads((folder / MANIFEST).read_bytes()).get("files")
        listed = {str(n) for n in files} if isinstance(files, dict) else set()
    except (OSError, ValueError, AttributeError, RecursionError):
        pass
    return sorted(n for n in names if n not in RUN_FILES and n not in listed)


def check_replaceable(folder: Path, why: str = "retraining it") -> None:
    """Refuse to replace the run folder ``folder`` (``--force``, or a half-written run redone) when it holds what
    learnact did not write: a user's files in it (:func:`user_files`), or a folder or link not marked as that run.

    Args:
        folder: ``runs/<run_id>`` (nothing is checked when it does not exist).
        why: What would replace it, for the message (``"--force"``).

    Raises:
        RunStoreError: One line naming the folder, what is in it and what to do; it is left alone.
    """
    folder = Path(folder)
    if not (folder.exists() or folder.is_symlink()):
        return
    if not _is_own_run(folder):
        raise RunStoreError(f"{str(folder)!r} exists but is not a run folder learnact wrote (no {MARKER} naming "
                            f"{folder.name}); it was left alone: move it out of {str(folder.parent)!r} and rerun")
    mine = user_files(folder)
    if mine:
        shown = ", ".join(mine[:5]) + (f" and {len(mine) - 5} more" if len(mine) > 5 else "")
        raise RunStoreError(f"run folder {str(folder)!r} holds {shown}, which learnact did not write, and "
                            f"{why} would replace the folder; move {'it' if len(mine) == 1 else 'them'} out of the "
                            f"run folder (beside {RUNS_DIR}/, say) and rerun; nothing was written")


def write_run(study_dir: Path, art: RunArtifacts) -> Path:
    """Write all artefacts of a run atomically, sealed by a manifest; returns the final folder.

    The folder is written under ``runs/.tmp-<run_id>-<pid>`` (marker first,
    ``MANIFEST.json`` and ``DONE`` last) and renamed into place; an existing
    finished folder of the same run (``--force``) is replaced in one step.

    Raises:
        RunStoreError: An OS error while writing (the temporary folder is
            removed first), or ``runs/<run_id>`` exists but is not a run
            folder learnact wrote, or holds a user's files
            (:func:`check_replaceable`; it is left alone).
    """
    final = run_dir(study_dir, art.run)
    rid = art.run.run_id
    files = _serialise(art)
    manifest = _manifest_bytes(rid, files)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(final.parent, exc) from exc
    check_replaceable(final)
    tmp = final.parent / f".tmp-{rid}-{os.getpid()}"
    try:
        if tmp.exists():  # our own pid's leftover
            shutil.rmtree(tmp)
        tmp.mkdir()
        for name, data in files.items():  # the marker first
            (tmp / name).write_bytes(data)
        (tmp / MANIFEST).write_bytes(manifest)
        (tmp / DONE).write_text(_sha256(manifest) + "\n")
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(final, exc) from exc
        raise
    try:
        if final.exists():  # --force: move the old run aside in one step, never half-delete it in place
            old = final.parent / f".old-{rid}-{os.getpid()}"
            os.replace(final, old)
            try:
                os.replace(tmp, final)
            except OSError:
                os.replace(old, final)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(final, exc) from exc
    _MANIFESTS.pop(os.path.abspath(final), None)
    return final


def write_runs(study_dir: Path, arts: Sequence[RunArtifacts], workers: int | None = None) -> Iterator[Path]:
    """:func:`write_run` for each of ``arts``, spread over worker processes; yields each final folder, in order.

    Serialising a run (its history's JSON lines, predictions CSV, hashes)
    is Python work of a few milliseconds; after a 1,005-run study that was
    seconds in one process. Forked workers (:func:`learnact._processes.fork_map`)
    share it; each folder is still written whole under a temporary name and
    renamed, so the store's guarantees are those of :func:`write_run`. Runs
    are written in this process when there are few, or where forking is
    unsafe.

    Args:
        study_dir: The study folder.
        arts: The runs' artefacts.
        workers: Most worker processes (default: the cores this process may use).

    Raises:
        RunStoreError: As :func:`write_run`, for the first run (in order) that fails.
    """
    if workers is None:
        workers = available_cores()
    for folder in fork_map(lambda art: write_run(study_dir, art), arts, workers):
        _MANIFESTS.pop(os.path.abspath(folder), None)  # the worker cleared its own copy of this cache, not ours
        yield folder


# ---------------------------------------------------------------- verifying


@dataclass(frozen=True)
class _Manifest:
    run_id: str
    files: dict[str, tuple[int, str]]  # name -> (size, sha256)


_MANIFESTS: dict[str, tuple[tuple[int, ...], _Manifest]] = {}
"""Manifests verified in this process, by folder, with the stat signature of DONE and MANIFEST.json."""


def _retrain_hint(folder: Path) -> str:
    folder = Path(folder)
    if folder.parent.name == RUNS_DIR:
        study = str(folder.parent.parent)
        return (f"move the run folder out of {folder.parent} and rerun `learnact run --out {study}` to retrain "
                f"it (or `learnact run --out {study} --force` to retrain the whole study)")
    return "retrain the run with `learnact run` (rerun its study)"


def _tampered(folder: Path, path: Path, what: str, error: type[RunStoreError] = RunStoreError) -> RunStoreError:
    return error(f"{str(path)} {what}; {_retrain_hint(folder)}")


def _stat_signature(key: str) -> tuple[int, ...] | None:
    try:
        d = os.stat(os.path.join(key, DONE))
        m = os.stat(os.path.join(key, MANIFEST))
    except OSError:
        return None
    return (d.st_ino, d.st_size, d.st_mtime_ns, m.st_ino, m.st_size, m.st_mtime_ns)


def _folder_run_id(folder: Path) -> str | None:
    """The run id a run folder's name claims (``superseded/<run_id>~2`` claims ``<run_id>``), or ``None`` for a
    folder not named by a run id (a run folder copied elsewhere under a name of the user's)."""
    name = Path(folder).name
    if Path(folder).parent.name == SUPERSEDED_DIR:
        name = re.sub(r"~\d+$", "", name)
    return name if is_run_id(name) else None


def _load_manifest(folder: Path) -> _Manifest:
    """The run's verified manifest (cached per process until DONE or MANIFEST.json change); a folder named by a
    run id must hold that run (its manifest names it)."""
    key = os.path.abspath(folder)
    sig = _stat_signature(key)
    if sig is not None:
        cached = _MANIFESTS.get(key)
        if cached is not None and cached[0] == sig:
            return cached[1]
    folder = Path(folder)
    done_path, man_path = folder / DONE, folder / MANIFEST
    if not folder.is_dir():
        raise RunStoreError(f"run folder {str(folder)!r} does not exist")
    try:
        done = done_path.read_bytes()
    except FileNotFoundError:
        raise RunStoreError(f"{str(folder)} is not a finished run (no {DONE} marker); rerun the study to "
                            f"complete it") from None
    except OSError as exc:
        raise RunStoreError(f"cannot read {str(done_path)!r}: {exc.strerror or exc}") from None
    try:
        raw = man_path.read_bytes()
    except FileNotFoundError:
        if not done.strip() and not (folder / MARKER).exists():
            study = str(folder.parent.parent) if folder.parent.name == RUNS_DIR else "STUDY"
            raise RunStoreError(
                f"{str(folder)} has no {MANIFEST}: it was written by learnact 0.1 (run format 1), so its files "
                f"cannot be verified; retrain it with `learnact run --out {study} --force` (or move the run folder "
                f"out of runs/ and rerun `learnact run --out {study}`)") from None
        raise _tampered(folder, man_path, "is missing (deleted?)") from None
    except OSError as exc:
        raise RunStoreError(f"cannot read {str(man_path)!r}: {exc.strerror or exc}") from None
    if done.decode("ascii", "replace").strip() != _sha256(raw):
        raise _tampered(folder, man_path, f"does not match the hash in {DONE} (edited or corrupt)")
    try:
        doc = json.loads(raw)
        run_id = doc["run_id"]
        files = {str(name): (int(e["size"]), str(e["sha256"])) for name, e in doc["files"].items()}
        if not isinstance(run_id, str) or doc.get("format") != RUN_FORMAT:
            raise ValueError("format")
        if any("/" in n or "\\" in n or n in (MANIFEST, DONE, "", ".", "..") or not _SHA256.fullmatch(h)
               for n, (_, h) in files.items()):
            raise ValueError("entries")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise _tampered(folder, man_path, f"is not a {RUN_FORMAT} manifest (corrupt)") from None
    named = _folder_run_id(folder)
    if named is not None and run_id != named:
        where = f" out of {str(folder.parent)!r}" if folder.parent.name in (RUNS_DIR, SUPERSEDED_DIR) else ""
        study = str(folder.parent.parent) if folder.parent.name == RUNS_DIR else "STUDY"
        raise RunStoreError(f"{str(man_path)} names run {run_id!r}, not {named!r}: the run folder is corrupt (it "
                            f"holds another run's files, copied or linked over it); move it{where} and rerun "
                            f"`learnact run --out {study}` to retrain {named!r}")
    manifest = _Manifest(run_id, files)
    for name, (size, _) in files.items():
        path = folder / name
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            raise _tampered(folder, path, "is missing (listed in the run's manifest; deleted?)") from None
        except OSError as exc:
            raise RunStoreError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
        if actual != size:
            raise _tampered(folder, path, f"does not match its manifest ({actual} bytes, sealed with {size}: edited "
                                          "or truncated)")
    if sig is not None:
        _MANIFESTS[key] = (sig, manifest)
    return manifest


def _read_verified(folder: Path, name: str, error: type[RunStoreError] = RunStoreError) -> bytes:
    """The bytes of a run file, checked against the run's manifest."""
    folder = Path(folder)
    manifest = _load_manifest(folder)
    path = folder / name
    entry = manifest.files.get(name)
    if entry is None:
        raise _tampered(folder, path, "is not listed in the run's manifest", error)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _tampered(folder, path, "is missing (listed in the run's manifest; deleted?)", error) from None
    except OSError as exc:
        raise error(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if len(data) != entry[0] or _sha256(data) != entry[1]:
        raise _tampered(folder, path, "does not match its manifest (edited or corrupt)", error)
    return data


def verify_run(folder: Path) -> None:
    """Check every file of a finished run folder against its manifest (sizes and SHA-256).

    Raises:
        RunStoreError: No DONE, a format-1 folder (no manifest), a file
            missing, edited or corrupt, or a folder named by a run id holding
            another run's files (its manifest names that run); the message
            names the file and how to retrain the run.
    """
    folder = Path(folder)
    manifest = _load_manifest(folder)
    for name in manifest.files:
        _read_verified(folder, name)


# ---------------------------------------------------------------- reading


def _corrupt(folder: Path, path: Path, what: str, error: type[RunStoreError] = RunStoreError) -> RunStoreError:
    return error(f"{str(path)}: {what}; the run folder is corrupt: {_retrain_hint(folder)}")


def _read_json(folder: Path, name: str) -> Any:
    data = _read_verified(folder, name)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _corrupt(folder, Path(folder) / name, f"not valid JSON ({exc})") from None


def read_run_config(folder: Path) -> RunConfig:
    """The :class:`RunConfig` saved in a run folder (verified against the manifest)."""
    from pydantic import ValidationError

    raw = _read_json(folder, "config.json")
    if not isinstance(raw, dict):
        raise _corrupt(folder, Path(folder) / "config.json", "not a JSON object")
    raw = {k: v for k, v in raw.items() if k != "run_id"}
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        if message.startswith("cannot import "):  # the run needs a plugin this process cannot import
            raise RunStoreError(f"{str(Path(folder) / 'config.json')}: {message.rstrip('.')}; the run folder is "
                                f"fine: this process needs the plugin or module its study used (learnact run "
                                f"--plugin), so make it importable here and rerun") from None
        field = exc.errors()[0]["loc"][-1] if exc.errors()[0]["loc"] else ""
        if message.startswith("unknown activation ") or (field == "kind" and message.startswith("must be one of")):
            # the manifest vouches for the file: the name was registered where the run trained (a script's
            # register_candidate / register_family), not here; retraining would not help
            raise RunStoreError(f"{str(Path(folder) / 'config.json')}: {message.split(';')[0]}: the run folder "
                                "is fine, but the name was registered only in the Python session that trained it "
                                "(register_candidate / register_family in a script); register it again before "
                                "reading the study (in Python: register it, then call learnact.reporting."
                                "build_report), or, for the CLI, move the registration into a plugin module named "
                                "in the study's plugins and run the study again") from None
        raise _corrupt(folder, Path(folder) / "config.json", message) from None


def _number(value: Any) -> float | None:
    """``value`` as a float, ``None`` for JSON null; raises ``ValueError`` for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def read_metrics(folder: Path) -> dict[str, Any]:
    """The run's ``metrics.json``, verified: metrics within their ranges (or NaN), costs non-negative.

    Keys it does not know (``status``, ``diverged_*``, ...) are passed through.
    """
    path = Path(folder) / "metrics.json"
    metrics = _read_json(folder, "metrics.json")
    if not isinstance(metrics, dict):
        raise _corrupt(folder, path, "not a JSON object")
    for name, (low, high) in METRIC_RANGES.items():
        if name not in metrics:
            continue
        try:
            value = _number(metrics[name])
        except ValueError as exc:
            raise _corrupt(folder, path, f"{name} {exc}") from None
        if value is not None and not math.isnan(value) and not low <= value <= high:
            raise _corrupt(folder, path, f"{name} = {value:g} is outside [{low:g}, {high:g}]")
    if "status" in metrics and not isinstance(metrics["status"], str):
        raise _corrupt(folder, path, f"status {metrics['status']!r} is not a string")
    return metrics


def is_diverged(metrics: dict[str, Any]) -> bool:
    """True when a run's metrics say it diverged (``status == "diverged"`` or a ``diverged_epoch``)."""
    return metrics.get("status") == "diverged" or metrics.get("diverged_epoch") is not None


def read_gates(folder: Path) -> list[dict[str, Any]]:
    """The run's ``gates.json`` (one entry per hidden layer), verified.

    Static gate weights lie in [0, 1] (finite) unless the run diverged.
    """
    path = Path(folder) / "gates.json"
    gates = _read_json(folder, "gates.json")
    if not isinstance(gates, list) or not all(isinstance(g, dict) and "gate" in g for g in gates):
        raise _corrupt(folder, path, "not a list of per-layer gate records")
    for g in gates:
        if g.get("weights") is None:
            continue
        try:
            arr = np.asarray(g["weights"], dtype=np.float64)
        except (TypeError, ValueError):
            raise _corrupt(folder, path, f"gate weights of layer {g.get('layer')} are not numbers") from None
        with np.errstate(invalid="ignore"):
            ok = bool(np.all(np.isfinite(arr) & (arr >= 0) & (arr <= 1)))
        if not ok and not is_diverged(read_metrics(folder)):
            raise _corrupt(folder, path, f"gate weights of layer {g.get('layer')} are not probabilities in [0, 1]")
    return gates


def read_preprocessing(folder: Path) -> dict[str, Any]:
    """The run's ``preprocessing.json`` (scaler and split indices), verified.

    ``class_names`` (when present) must be ``n_classes`` distinct strings.
    """
    path = Path(folder) / "preprocessing.json"
    pre = _read_json(folder, "preprocessing.json")
    if not isinstance(pre, dict):
        raise _corrupt(folder, path, "not a JSON object")
    n = pre.get("n_classes")
    if pre.get("task") == "regression":
        target = pre.get("target")
        if not isinstance(target, dict) or not all(
                isinstance(target.get(k), int | float) and math.isfinite(target[k]) for k in ("mean", "scale")) \
                or not target["scale"] > 0:
            raise _corrupt(folder, path, f"target scaling {target!r} is not a finite mean and a scale > 0")
        return pre
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise _corrupt(folder, path, f"n_classes {n!r} is not an integer >= 2")
    names = pre.get("class_names")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(c, str) for c in names) or len(set(names)) != len(names):
            raise _corrupt(folder, path, f"class_names {names!r} are not distinct strings")
        if names and n is not None and len(names) != n:
            raise _corrupt(folder, path, f"{len(names)} class names {names} for n_classes = {n}")
    return pre


def read_history(folder: Path) -> list[dict[str, Any]]:
    """The run's per-epoch records (``history.jsonl``), verified: one JSON object per line."""
    path = Path(folder) / "history.jsonl"
    text = _read_verified(folder, "history.jsonl").decode("utf-8", "replace")
    records = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise _corrupt(folder, path, f"line {i} is not valid JSON ({exc})") from None
        if not isinstance(rec, dict):
            raise _corrupt(folder, path, f"line {i} is not a JSON object")
        records.append(rec)
    return records


def read_predictions(folder: Path) -> pd.DataFrame:
    """The run's test-set predictions (and per-sample gate weights), verified.

    Probability columns (``prob``, ``prob_<k>``) and gate columns
    (``gate<layer>_<candidate>``) are finite and in [0, 1] unless the run diverged.
    """
    path = Path(folder) / "predictions.csv"
    data = _read_verified(folder, "predictions.csv")
    try:
        table = pd.read_csv(io.BytesIO(data))
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _corrupt(folder, path, f"not a readable CSV ({' '.join(str(exc).split())})") from None
    probs = [c for c in table.columns if c == "prob" or re.fullmatch(r"prob_\d+", str(c))]
    regression = "y_pred" in table.columns and not probs
    if not {"row", "y_true"} <= set(table.columns) or not (probs or regression):
        raise _corrupt(folder, path, f"lacks the row, y_true or prob columns (has {list(table.columns)[:6]})")
    if regression:  # predicted values: finite unless the run diverged
        pred = pd.to_numeric(table["y_pred"], errors="coerce").to_numpy(np.float64)
        if not np.isfinite(pred).all() and not is_diverged(read_metrics(folder)):
            i = int(np.flatnonzero(~np.isfinite(pred))[0])
            raise _corrupt(folder, path, f"column 'y_pred' holds {table['y_pred'].iloc[i]!r} (row {i + 1}), not a "
                                         f"finite number")
    checked = probs + [c for c in table.columns if re.fullmatch(r"gate\d+_.+", str(c))]
    try:
        idx = [table.columns.get_loc(c) for c in checked]
        values = table.to_numpy(np.float64)[:, idx]
    except (TypeError, ValueError):  # text in a column
        values = np.column_stack([pd.to_numeric(table[c], errors="coerce").to_numpy(np.float64) for c in checked])
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(values) & (values >= 0) & (values <= 1))
    if bad.any() and not is_diverged(read_metrics(folder)):  # a diverged run may hold NaN
        i, j = (int(k) for k in np.argwhere(bad)[0])
        col = checked[j]
        raw = table[col].iloc[i]
        shown = f"{values[i, j]:g}" if not np.isnan(values[i, j]) or pd.isna(raw) else repr(str(raw))
        raise _corrupt(folder, path, f"column {col!r} holds {shown} (row {i + 1}), not a probability in [0, 1]")
    return table


def load_state(folder: Path) -> dict[str, Any]:
    """The saved weights (safetensors, never pickle), verified against the manifest.

    Raises:
        CheckpointError: Missing, edited or unreadable weights.
    """
    from safetensors.torch import load

    path = Path(folder) / "weights.safetensors"
    data = _read_verified(folder, "weights.safetensors", CheckpointError)
    try:
        return load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise _corrupt(folder, path, f"not a readable checkpoint ({exc})", CheckpointError) from None


# ---------------------------------------------------------------- housekeeping


def _is_finished_run(folder: Path, rid: str | None = None) -> bool:
    """Whether ``folder`` is a finished run of learnact's: named by a run id (``rid``: the id its name claims,
    default the name), a DONE file, and learnact's marker or manifest (a format-1 run: an empty DONE beside its
    config.json). Its files are verified when read: a marker or manifest naming another run makes it a corrupt
    run, not a user's folder."""
    if not (is_run_id(folder.name if rid is None else rid) and folder.is_dir() and (folder / DONE).is_file()):
        return False
    if (folder / MARKER).is_file() or (folder / MANIFEST).is_file():
        return True
    try:
        return not (folder / DONE).read_bytes().strip() and (folder / "config.json").is_file()
    except OSError:
        return False


def finished_runs(study_dir: Path) -> list[Path]:
    """Run folders (named by a run id) with a DONE marker and learnact's marker or manifest, sorted by name;
    their files are verified when read.

    Other entries under ``runs/`` (a user's folders, even with a run id's name and a file named DONE) are not
    runs: see :func:`foreign_entries`.
    """
    root = Path(study_dir) / RUNS_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _is_finished_run(p))


def _classify(entry: Path) -> str:
    """What an entry of ``runs/`` is: ``temp``, ``old``, ``partial`` (ours, unfinished), ``run`` or ``foreign``."""
    if entry.is_symlink():  # never removed; a link to a finished run is read like one
        return "run" if _is_finished_run(entry) else "foreign"
    m = _TEMP_PATTERN.fullmatch(entry.name)
    if m is not None:
        if not entry.is_dir() or not is_run_id(m["rid"]):
            return "foreign"
        marker = _marker_id(entry)
        if marker not in (None, m["rid"]):
            return "foreign"
        return "old" if m["kind"] == "old" else "temp"
    if not is_run_id(entry.name) or not entry.is_dir():
        return "foreign"
    if _is_finished_run(entry):
        return "run"
    if _marker_id(entry) == entry.name:
        return "partial"
    return "foreign"


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_partial(study_dir: Path) -> int:
    """Remove what a killed or failed session of learnact left half-written; returns how many entries.

    Removed: ``runs/.tmp-<run_id>-<pid>`` folders, ``runs/.old-<run_id>-<pid>``
    folders whose replacement is in place (one whose replacement never
    arrived holds the only finished copy and is moved back instead), run
    folders named by a run id with their own marker but no DONE (unless
    they hold a user's files: :func:`user_files`), and the
    study folder's own temporary files. Nothing else is touched: see
    :func:`foreign_entries`.

    Only safe while holding the study folder's lock (another process may be writing).
    """
    folder = Path(study_dir)
    n = 0
    if folder.is_dir():
        for p in folder.iterdir():
            if _STUDY_TEMP_PATTERN.fullmatch(p.name) and p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                n += 1
    root = folder / RUNS_DIR
    if not root.is_dir():
        return n
    for p in sorted(root.iterdir()):
        kind = _classify(p)
        if kind == "old":
            rid = _TEMP_PATTERN.fullmatch(p.name)["rid"]  # type: ignore[index]
            target = root / rid
            if (p / DONE).is_file() and not (target.exists() or target.is_symlink()):
                os.replace(p, target)  # the finished run whose replacement never arrived
            else:
                _remove_tree(p)
            n += 1
        elif kind == "temp" or (kind == "partial" and not user_files(p)):
            _remove_tree(p)
            n += 1
    return n


def foreign_entries(study_dir: Path) -> list[str]:
    """Names of the entries under ``runs/`` that learnact did not write (left alone by every function here)."""
    root = Path(study_dir) / RUNS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if _classify(p) == "foreign")


def _free_name(root: Path, name: str) -> Path:
    target = root / name
    n = 1
    while target.exists() or target.is_symlink():
        n += 1
        target = root / f"{name}~{n}"
    return target


def retire_runs(study_dir: Path, keep: set[str]) -> list[str]:
    """Move finished runs whose id is not in ``keep`` to ``superseded/``; returns their ids.

    A study folder's tables then hold exactly the current study's runs, and
    nothing trained is deleted: if ``superseded/<run_id>`` exists already, the
    run goes to ``superseded/<run_id>~2`` (``~3``, ...). Only folders named by a
    run id are moved (never symlinks or a user's folders).
    """
    moved = []
    for folder in finished_runs(study_dir):
        if folder.name not in keep and not folder.is_symlink():
            root = Path(study_dir) / SUPERSEDED_DIR
            root.mkdir(exist_ok=True)
            os.replace(folder, _free_name(root, folder.name))
            moved.append(folder.name)
    return moved


def _restorable(study_dir: Path, wanted: set[str]) -> dict[str, Path]:
    """The finished runs in ``superseded/`` that :func:`restore_runs` moves back: ``{run_id: folder}``.

    ``superseded/<run_id>~<n>`` folders count as copies of ``<run_id>``; the first one found (by name) is
    chosen, and none where ``runs/<run_id>`` exists.
    """
    root = Path(study_dir) / SUPERSEDED_DIR
    if not root.is_dir():
        return {}
    found: dict[str, Path] = {}
    for folder in sorted(root.iterdir()):
        rid = re.sub(r"~\d+$", "", folder.name)
        target = Path(study_dir) / RUNS_DIR / rid
        if (rid in wanted and rid not in found and not folder.is_symlink() and _is_finished_run(folder, rid)
                and not (target.exists() or target.is_symlink())):
            found[rid] = folder
    return found


def restore_runs(study_dir: Path, wanted: set[str]) -> list[str]:
    """Move finished runs in ``superseded/`` whose id is in ``wanted`` back to ``runs/``; returns their ids.

    ``superseded/<run_id>~<n>`` folders count as copies of ``<run_id>``; the
    first one found is moved back, the others stay.
    """
    restored = []
    for rid, folder in _restorable(study_dir, wanted).items():
        target = Path(study_dir) / RUNS_DIR / rid
        target.parent.mkdir(exist_ok=True)
        os.replace(folder, target)
        restored.append(rid)
    return restored


def kept_runs(study_dir: Path, wanted: set[str]) -> dict[str, Path]:
    """The finished run folders a study planning ``wanted`` (run ids) keeps instead of training: ``{run_id:
    folder}``, those under ``runs/`` and those :func:`restore_runs` would move back from ``superseded/``.

    Nothing is moved; the folders are not verified (:func:`verify_run`).
    """
    kept = {p.name: p for p in finished_runs(study_dir) if p.name in wanted}
    return {**kept, **_restorable(study_dir, wanted)}


#: The top-level keys of the ``study.json`` learnact writes (``experiment.grid.study_to_dict``) ...
_STUDY_KEYS = frozenset({"name", "seeds", "reference", "data", "backbone", "train", "variants", "plugins"})
#: ... those every version wrote ...
_STUDY_REQUIRED = frozenset({"name", "seeds", "data", "backbone", "train", "variants"})
#: ... and the training settings every version spelled out (a study file written by hand rarely names them all).
_STUDY_TRAIN = frozenset({"lr", "weight_decay", "batch_size", "max_epochs", "patience", "min_delta", "entropy_weight"})


def is_learnact_study(raw: Any) -> bool:
    """Whether ``raw`` (a parsed ``study.json``) is a resolved study as ``learnact run`` writes it: a JSON object
    of learnact's keys only, seeds a list of integers, every variant a named object with its ``kind``, and every
    training setting spelled out (``experiment.grid.study_to_dict``, unchanged in this shape since learnact 0.1).

    A user's own ``study.json`` (notes, or a study file with ``seeds = {count = 2}``) is not: ``learnact run``
    never writes over it.
    """
    if not isinstance(raw, dict) or not _STUDY_REQUIRED <= raw.keys() <= _STUDY_KEYS:
        return False
    seeds, variants, train = raw["seeds"], raw["variants"], raw["train"]
    return (isinstance(raw["name"], str) and isinstance(raw["data"], dict) and isinstance(raw["backbone"], dict)
            and isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
            and isinstance(variants, list) and bool(variants)
            and all(isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("kind"), str)
                    for v in variants)
            and isinstance(train, dict) and _STUDY_TRAIN <= train.keys())


def _parsed_study_file(folder: Path) -> Any:
    """The parsed ``study.json`` of ``folder``; ``None`` when it is missing, unreadable or not JSON."""
    path = Path(folder) / STUDY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None


def is_study_folder(path: Path) -> bool:
    """Whether ``path`` is a study folder: a folder holding the ``study.json`` that ``learnact run`` wrote
    (:func:`is_learnact_study`), not a user's file of that name."""
    return Path(path).is_dir() and is_learnact_study(_parsed_study_file(Path(path)))


def check_output_path(path: Path, option: str, example: str) -> None:
    """Refuse a user-named output file (``predict --out``, ``compare --csv``) that cannot or must not be written.

    Args:
        path: The file named.
        option: How the message names it (``"--out"``).
        example: A file name to suggest where ``path`` is a folder (``"predictions.csv"``).

    Raises:
        IsADirectoryError: ``path`` is a folder.
        ValueError: ``path`` is one of a study folder's own files (``study.json``, ``results.csv``, ...), or
            lies in a run folder or a study's ``runs/`` or ``superseded/`` (:func:`protected_folder`), or in a
            report pack (a folder marked :data:`REPORT_MARKER`); the message names the option and what to do.
        FileNotFoundError: The folder ``path`` would be written in does not exist.
    """
    if Path(path).is_dir():
        raise IsADirectoryError(f"{option} {str(path)!r} is a folder; give a file name, e.g. "
                                f"{str(Path(path) / example)!r}")
    p = Path(path).resolve()
    if p.name in STUDY_OUTPUTS and (p.parent / STUDY_FILE).is_file():
        raise ValueError(f"{option} {str(path)!r} is the study's own {p.name}, which learnact reads back; write "
                         f"to another file name")
    inside = protected_folder(path)
    if inside is not None:
        raise ValueError(f"{option} {str(path)!r} lies in {str(inside)!r}, part of a study's run store; files are "
                         f"never written there but by learnact run: choose a path outside it")
    report = next((f for f in p.parents if (f / REPORT_MARKER).is_file()), None)
    if report is not None:  # compare --csv report/tables/comparisons.csv had replaced the report's own table
        raise ValueError(f"{option} {str(path)!r} lies in {str(report)!r}, a report pack learnact report writes "
                         f"and rebuilds; choose a path outside it")
    if not Path(path).parent.is_dir():
        raise FileNotFoundError(f"the folder of {option} {str(path)!r}, {str(Path(path).parent)!r}, does not "
                                f"exist; create it first")


REPORT_MARKER = ".learnact-report"
"""The file that marks a folder as a report pack learnact wrote (``reporting.report.claim_report_folder``)."""


def is_own_lock(path: Path) -> bool:
    """Whether the lock file ``path`` is one learnact wrote: a regular file (not a link) holding nothing or
    :data:`LOCK_TEXT`. A user's ``.lock`` is never written through."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            text = f.read(1000)
    except OSError:
        return False
    return LOCK_TEXT.fullmatch(text.decode("utf-8", "replace")) is not None


def check_study_entries(folder: Path) -> None:
    """Refuse a study folder where a name learnact writes is taken by the wrong kind of entry: a folder (or a
    link, for the lock) where it writes a file, a file where it keeps a folder (``runs``, ``superseded``).

    Called before anything is written, so the refusal leaves the folder as it was.

    Raises:
        RunStoreError: One line naming the entry, what learnact keeps there and what to do.
    """
    folder = Path(folder)
    fix = f"move it out of {str(folder)!r} (or give another --out folder); nothing was written"
    for name, what in _STUDY_FILES.items():
        p = folder / name
        if name == LOCK_FILE and p.is_symlink():
            raise RunStoreError(f"{str(p)!r} is a link, where learnact {what} (never written through a link); "
                                f"{fix}")
        if p.exists() and not p.is_file():
            kind = "a folder" if p.is_dir() else "not a regular file"
            raise RunStoreError(f"{str(p)!r} is {kind}, in the way where learnact {what}; {fix}")
    for name, what in _STUDY_FOLDERS.items():
        p = folder / name
        if (p.exists() or p.is_symlink()) and not p.is_dir():
            raise RunStoreError(f"{str(p)!r} is a file, in the way where learnact {what} (a folder); {fix}")


def holds_runs(folder: Path) -> bool:
    """Whether ``folder`` has a ``runs/`` holding a run folder learnact wrote (named by a run id and marked with
    it): a study folder, even where its ``study.json`` is missing or corrupt."""
    root = Path(folder) / RUNS_DIR
    try:
        return root.is_dir() and any(_is_own_run(p) for p in root.iterdir())
    except OSError:
        return False


def foreign_outputs(folder: Path) -> list[str]:
    """The names of :data:`STUDY_OUTPUTS` that exist in ``folder`` when it is not a study folder (it has no
    ``study.json`` that learnact wrote: :func:`is_study_folder`, and no run learnact wrote: :func:`holds_runs`):
    files and folders that ``learnact run`` would write over, but did not write (a user's own ``study.json``
    among them).

    Not ``runs/`` (learnact leaves what it did not write there alone), not ``study.log`` (appended to, never
    replaced; a run interrupted before it wrote ``study.json`` leaves one), not a ``.lock`` learnact wrote
    (:func:`is_own_lock`) and not a ``report/`` learnact marked.
    """
    folder = Path(folder)
    if not folder.is_dir() or is_study_folder(folder) or holds_runs(folder):
        return []
    ours = ({RUNS_DIR, LOG_FILE} | ({REPORT_DIR} if (folder / REPORT_DIR / REPORT_MARKER).is_file() else set())
            | ({LOCK_FILE} if is_own_lock(folder / LOCK_FILE) else set()))
    return [name for name in STUDY_OUTPUTS
            if name not in ours and ((folder / name).exists() or (folder / name).is_symlink())]


def protected_folder(path: Path) -> Path | None:
    """The run folder or study ``runs/`` / ``superseded/`` folder that ``path`` lies in, or ``None``.

    Commands writing user-named outputs (``predict --out``) refuse such paths,
    so nothing lands in (or replaces a file of) the run store.
    """
    p = Path(path).resolve()
    for anc in (p, *p.parents):
        if anc.is_dir() and ((anc / MARKER).is_file() or (anc / MANIFEST).is_file()
                             or ((anc / DONE).is_file() and (anc / "config.json").is_file())):
            return anc
        if anc.name in (RUNS_DIR, SUPERSEDED_DIR) and (anc.parent / "study.json").is_file():
            return anc
    return None


# --- a study's runs ----------------------------------------------------------------------------------------------


def check_study_dir(study_dir: Path) -> Path:
    """``study_dir`` as a :class:`Path`; raises :class:`RunStoreError` when it is not a folder."""
    folder = Path(study_dir)
    if not folder.is_dir():
        raise RunStoreError(not_a_study_folder(folder))
    return folder


def not_a_study_folder(path: Path) -> str:
    """What is wrong with ``path``, which is not a folder: it does not exist, or it is a file."""
    if path.exists():
        return f"{str(path)!r} is a file, not a study folder; give the folder `learnact run --out` wrote"
    return f"study folder {str(path)!r} does not exist"


def _study_file(folder: Path) -> dict[str, Any]:
    """The study's ``study.json`` as a dict, ``{}`` when there is none (run folders copied without it).

    Raises:
        RunStoreError: ``study.json`` is not a readable JSON object (corrupt, or a folder of that name): the
            tables would otherwise take another reference and order without a word.
    """
    path = folder / STUDY_FILE
    if not (path.exists() or path.is_symlink()):
        return {}
    fix = f"rewrite it with `learnact run STUDY_FILE --out {folder}` (finished runs are kept)"
    if not path.is_file():
        raise RunStoreError(f"{str(path)!r} is not a file, so not the study's study.json; move it out of "
                            f"{str(folder)!r}, then {fix}")
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise RunStoreError(f"corrupt file {str(path)!r} ({reason}); {fix}") from None
    if not isinstance(raw, dict):
        raise RunStoreError(f"corrupt file {str(path)!r} (not a JSON object); {fix}")
    return raw


def _variant_order(folder: Path) -> dict[str, int]:
    variants = _study_file(folder).get("variants")
    names = [v.get("name") for v in variants if isinstance(v, dict)] if isinstance(variants, list) else []
    return {n: i for i, n in enumerate(dict.fromkeys(n for n in names if isinstance(n, str)))}


def _dataset_order(folder: Path) -> dict[str, int]:
    """Rank of each suite data set label in ``study.json`` (``data.datasets``)."""
    data = _study_file(folder).get("data")
    entries = data.get("datasets") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return {}
    names = [e.get("dataset") for e in entries if isinstance(e, dict)]
    return {dataset_label(n): i for i, n in enumerate(n for n in names if isinstance(n, str))}


def planned_runs(study_dir: Path) -> set[tuple[str, str, int]] | None:
    """``(data set label or "", variant, seed)`` of every run the study's ``study.json`` plans, or ``None`` when
    it cannot tell (no ``study.json``, or one without a list of variants and seeds)."""
    study = _study_file(Path(study_dir))
    variants, seeds = study.get("variants"), study.get("seeds")
    if not isinstance(variants, list) or not isinstance(seeds, list):
        return None
    names: list[str] = [v["name"] for v in variants if isinstance(v, dict) and isinstance(v.get("name"), str)]
    labels = list(_dataset_order(Path(study_dir))) or [""]
    return {(d, v, int(s)) for d in labels for v in names for s in seeds if isinstance(s, int)}


def unfinished_note(study_dir: Path, finished: Iterable[RunConfig]) -> str | None:
    """A sentence naming the runs ``study.json`` plans that have not finished (``finished``: the configs of
    those that have, finished or diverged), or ``None`` when none is missing or the plan is unknown."""
    planned = planned_runs(study_dir)
    if not planned:
        return None
    missing = planned - {(c.suite_dataset or "", c.variant, c.seed) for c in finished}
    if not missing:
        return None
    variants = list(dict.fromkeys(v for _, v, _ in sorted(missing, key=lambda k: (k[1], k[2], k[0]))))
    shown = ", ".join(variants[:5]) + (f" and {len(variants) - 5} more" if len(variants) > 5 else "")
    return (f"{len(missing)} of the {len(planned)} runs {str(study_dir)!r} plans have not finished (variants "
            f"{shown}); the statistics use the finished ones: rerun `learnact run --out {study_dir}` to finish them")


def study_reference(study_dir: Path) -> str | None:
    """The ``reference`` variant named in the study's ``study.json``, if any."""
    ref = _study_file(Path(study_dir)).get("reference")
    return ref if isinstance(ref, str) else None


def study_runs(study_dir: Path) -> Iterator[tuple[Path, RunConfig]]:
    """Run folders of a study that training completed, with their configs, in study order.

    Every folder under ``runs/`` with a DONE marker counts, finished or
    diverged (:func:`~learnact.evaluation.status.run_status`; the runner moves
    runs a study no longer plans out of ``runs/``). Variants come in the
    order of ``study.json`` (unknown ones after, as found), seeds ascending;
    in a suite, data set by data set. If two finished runs share a data set,
    variant and seed, the most recently finished one is kept, with a warning.

    Raises:
        RunStoreError: The study folder does not exist, or a run folder is corrupt.
    """
    folder = check_study_dir(study_dir)
    order = _variant_order(folder)
    found: dict[tuple[str, str, int], tuple[Path, RunConfig]] = {}
    for run_folder in finished_runs(folder):
        cfg = read_run_config(run_folder)
        key = (cfg.suite_dataset or "", cfg.variant, cfg.seed)
        if key in found:
            other = found[key][0]
            newer = max((other, run_folder), key=lambda p: (p / DONE).stat().st_mtime)
            where = f" on data set {cfg.suite_dataset!r}" if cfg.suite_dataset else ""
            warnings.warn(f"two finished runs for variant {cfg.variant!r} seed {cfg.seed}{where}: {other.name!r} "
                          f"and {run_folder.name!r}; using the newer {newer.name!r}", stacklevel=2)
            if newer is other:
                continue
        found[key] = (run_folder, cfg)
    first_seen: dict[str, int] = {}
    for _, variant, _ in found:
        if variant not in order:
            first_seen.setdefault(variant, len(order) + len(first_seen))
    rank = {**first_seen, **order}
    datasets = _dataset_order(folder)
    for key in sorted(found, key=lambda k: (datasets.get(k[0], len(datasets)), k[0], rank[k[1]], k[2])):
        yield found[key]
