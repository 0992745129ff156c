"""A study's data checks and splits, and their preparation beside the import of torch (torch-free).

:func:`check_inputs` loads each data set of a study and checks that it can
be split; :func:`prepare_splits` loads each data set once and splits it for
every seed the runs use, keyed by :func:`split_key`. Both need scikit-learn
(its bundled data sets, ``train_test_split``, the scaler), about 1 s to
import on 2 cores; training needs torch, about 1.5 s. They do not depend on
each other, so ``learnact run`` does the data work in a forked helper
process (:func:`prefetch_inputs`) while it imports torch and the training
code itself: the helper sends back which data sets passed their check and
the splits, pickled through a pipe, and the process that trains never
imports scikit-learn. ``learnact run`` starts that helper before it reads
the study (:func:`start_early`), so scikit-learn loads while the command
reads and checks the study too.

The helper runs the same functions, so its splits are the ones this process
would have built (a test compares them value for value). A data set whose
check or split failed in the helper (or a helper that failed as a whole) is
checked and split again in this process, which raises the error here as it
would have been raised without a helper.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .._processes import ForkedCall, available_cores, can_fork
from ..config import DataConfig, RunConfig, StudyConfig
from ..data.preprocess import Preprocessing
from ..names import BUILTIN_DATASETS

if TYPE_CHECKING:
    from ..data import Split

__all__ = ["DATA_CODE", "DATA_FILE_KEY", "check_inputs", "data_file_fingerprint", "data_fingerprints",
           "discard_early", "prefetch_inputs", "prepare_splits", "split_key", "start_early"]

DATA_FILE_KEY = "data_file"
"""Key of a run's ``preprocessing.json`` holding the fingerprint of the CSV / Parquet file it was trained on."""


def split_key(run: RunConfig) -> tuple:
    """Key of the data split a run uses (data settings and seed)."""
    return (run.data.dataset, run.data.target, run.data.test_size, run.data.val_size, Preprocessing.of(run.data),
            run.data.task, run.seed)


def _check_key(data: DataConfig, seed: int) -> str:
    return f"{seed}:{data.model_dump_json()}"


def _data_key(data: DataConfig) -> tuple:
    """What a loaded data set depends on (the split sizes and seed do not change it)."""
    return data.dataset, data.target, Preprocessing.of(data), data.task


def _load(data: DataConfig, datasets: dict[tuple, Any]) -> Any:
    """The data set ``data`` names: from ``datasets``, or loaded once into it."""
    from ..data import load_dataset

    key = _data_key(data)
    if key not in datasets:
        datasets[key] = load_dataset(data.dataset, data.target, Preprocessing.of(data), data.task)
    return datasets[key]


def _check(data: DataConfig, seed: int, datasets: dict[tuple, Any] | None = None) -> None:
    """Load ``data`` (through ``datasets`` when given) and check that it can be split."""
    from ..data import check_splits

    ds = _load(data, {} if datasets is None else datasets)
    check_splits(ds, data.test_size, data.val_size, seed, Preprocessing.of(data))


def _build(runs: Sequence[RunConfig], *, skip_failed: bool = False,
           datasets: dict[tuple, Any] | None = None) -> dict[tuple, Split]:
    """Load each data set once (unless in ``datasets``) and split it for every seed; with ``skip_failed``, leave
    out what fails."""
    from ..data import split_dataset

    datasets = {} if datasets is None else datasets
    failed: set[tuple] = set()
    splits: dict[tuple, Split] = {}
    for run in runs:
        key = split_key(run)
        dkey = _data_key(run.data)
        if key in splits or dkey in failed:
            continue
        try:
            splits[key] = split_dataset(_load(run.data, datasets), run.seed, run.data.test_size, run.data.val_size,
                                        Preprocessing.of(run.data))
        except Exception:
            if not skip_failed:
                raise
            failed.add(dkey)
    return splits


def _helper_work(study: StudyConfig) -> dict[str, Any]:
    """In the helper: the data checks that pass and the splits that can be made (each data set loaded once)."""
    checked = []
    datasets: dict[tuple, Any] = {}
    for data in study.datasets or (study.data,):
        with contextlib.suppress(Exception):  # the calling process checks it again and raises the error
            _check(data, study.seeds[0], datasets)
            checked.append(_check_key(data, study.seeds[0]))
    return {"checked": checked, "splits": _build(study.runs(), skip_failed=True, datasets=datasets)}


def _helper_main(study: StudyConfig) -> dict[str, Any]:
    """The helper process's whole work: :func:`_helper_work` with the garbage collector off.

    The helper imports scikit-learn, and full collections walked it as it loaded (0.15-0.3 s of its 2 s
    beside the caller's import of torch, found with ``gc.callbacks``); it then ends, freeing everything at
    once (``os._exit``).
    """
    gc.disable()
    return _helper_work(study)


_ACTIVE: ForkedCall | None = None

_EARLY: ForkedCall | None = None
"""The helper :func:`start_early` started, until :func:`prefetch_inputs` gives it the study (or closes it)."""

DATA_CODE = ("sklearn.datasets", "sklearn.model_selection", "sklearn.preprocessing", "learnact.data")
"""What the data work imports (scikit-learn: about 0.5-1 s of CPU on 2 cores, most of the helper's work)."""


def _import_data_code() -> None:
    gc.disable()  # as in _helper_main: no full collections walking scikit-learn as it loads
    for name in DATA_CODE:
        importlib.import_module(name)


def start_early() -> bool:
    """Start :func:`prefetch_inputs`' helper now, before the study is read: it imports the data code
    (:data:`DATA_CODE`) while this process reads and checks the study, and waits for the study there.

    ``learnact run`` calls it first thing, where its runs train in this process: the helper's imports then
    use the core that idled while the command read its study (0.15-0.4 s on 2 cores), and its splits are
    ready sooner. The next :func:`prefetch_inputs` hands it the study; :func:`discard_early` ends it unused.

    Returns:
        Whether a helper runs now.
    """
    global _EARLY
    if _EARLY is None and _ACTIVE is None and available_cores() >= 2 and can_fork(True):
        _EARLY = ForkedCall(_helper_main, takes_input=True, before=_import_data_code)
    return _EARLY is not None


def discard_early() -> None:
    """End the helper :func:`start_early` started, if :func:`prefetch_inputs` did not take it."""
    global _EARLY
    helper, _EARLY = _EARLY, None
    if helper is not None:
        helper.close()


@contextlib.contextmanager
def prefetch_inputs(study: StudyConfig) -> Iterator[bool]:
    """Check and split the study's data in a forked helper while the block runs.

    Inside the block :func:`check_inputs` and :func:`prepare_splits` use
    the helper's work (waiting for it where it is not done yet). The helper
    is the one :func:`start_early` started, if any, else one forked now. No
    helper is started, and the block gets ``False``, with a single core, where
    forking is unavailable or unsafe (another thread runs:
    :func:`~learnact._processes.can_fork`), or inside another prefetch. On
    leaving the block a helper still running is stopped.
    """
    global _ACTIVE, _EARLY
    helper, _EARLY = _EARLY, None
    if helper is not None:
        try:
            helper.send(study)
        except Exception:  # noqa: BLE001 - gone since it started (killed), or a study that cannot be pickled
            helper.close()
            helper = None
    if helper is None:
        if _ACTIVE is not None or available_cores() < 2 or not can_fork(True):
            yield False
            return
        helper = ForkedCall(lambda: _helper_main(study))
    _ACTIVE = helper
    try:
        yield True
    finally:
        _ACTIVE = None
        helper.close()


def _prefetched() -> dict[str, Any]:
    return _ACTIVE.result({}) if _ACTIVE is not None else {}


def check_inputs(study: StudyConfig) -> None:
    """Find every problem the study's config and data reveal without training, before a study folder is made.

    Loads each data set (a CSV with text, missing or infinite values, or
    values too large to standardise, fails here, naming the column and the
    row) and checks that its splits can be made for the study's sizes
    (``data.test_size``, ``data.val_size``) and classes. Inside
    :func:`prefetch_inputs`, a data set the helper checked is not checked again.

    Raises:
        DataError: The problem, naming the field or the column.
    """
    passed = set(_prefetched().get("checked", ()))
    for data in study.datasets or (study.data,):
        if _check_key(data, study.seeds[0]) not in passed:
            _check(data, study.seeds[0])


def prepare_splits(runs: Sequence[RunConfig]) -> dict[tuple, Split]:
    """Load each data set once and split it for every seed the runs need.

    Inside :func:`prefetch_inputs`, the helper's splits serve the runs it
    made them for; any others are made here.

    Returns:
        ``{split_key(run): Split}`` for every run's key.
    """
    ready = _prefetched().get("splits", {})
    splits = {key: ready[key] for key in map(split_key, runs) if key in ready}
    missing = [run for run in runs if split_key(run) not in splits]
    if missing:
        splits.update(_build(missing))
    return splits


def data_file_fingerprint(path: str) -> dict[str, object]:
    """What identifies the content of a data file: ``{"path": absolute path, "size": bytes, "sha256": hex}``.

    A run id holds a CSV's path as written (``data.csv``), not its content; this is recorded with each run
    (:data:`DATA_FILE_KEY`), so a resumed study can tell that the file changed (or that a relative path names
    another file from another working folder). The file is read in chunks, never whole in memory.

    Raises:
        DataError: The file cannot be read.
    """
    from ..exceptions import DataError

    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256")
            size = f.tell()
    except OSError as exc:
        raise DataError(f"data file {path!r} cannot be read: {exc.strerror or exc}") from None
    return {"path": os.path.abspath(path), "size": size, "sha256": digest.hexdigest()}


def data_fingerprints(study: StudyConfig) -> dict[str, dict[str, object]]:
    """:func:`data_file_fingerprint` of each CSV / Parquet data set of ``study``, by its ``data.dataset``.

    Built-in data sets (:data:`~learnact.names.BUILTIN_DATASETS`) are code, not files, and get none. Each file
    is hashed once per call, however many runs use it.
    """
    out: dict[str, dict[str, object]] = {}
    for data in study.datasets or (study.data,):
        if data.dataset not in BUILTIN_DATASETS and data.dataset not in out:
            out[data.dataset] = data_file_fingerprint(data.dataset)
    return out
