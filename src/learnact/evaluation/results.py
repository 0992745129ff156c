"""The tidy results table of a study: one row per run and quantity, rebuilt from run folders alone.

Columns (:data:`RESULTS_COLUMNS`, stable for the report builder):

- ``run_id, variant, seed`` identify the run, ``status`` says whether it
  ``finished`` or ``diverged`` (:mod:`learnact.evaluation.status`; a diverged
  run has NaN test metrics and no gate rows, and statistics leave it out);
- ``kind, activation, candidates, gate, gate_source, gate_hidden,
  temperature, entropy_weight, max_epochs, patience, lr, weight_decay,
  batch_size, hidden, dataset`` describe the variant (``""`` or NaN where a
  field does not apply, e.g. ``temperature`` of a fixed activation;
  ``candidates`` joined with ``+``, ``hidden`` with ``-``);
- ``n_train, n_val, n_test`` are the run's split sizes (rows);
- ``metric, group, value``: the quantity's name, its group (``performance``,
  ``cost`` or ``gate``; see :mod:`learnact.evaluation.quantities`) and value.

``results.csv`` in the study folder holds the same table
(:func:`write_results`, :func:`load_results`).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import store
from .._processes import available_cores, fork_map
from ..config import RunConfig
from ..exceptions import RunStoreError
from ..store import METRIC_RANGES, RESULTS_FILE, study_reference, study_runs  # re-exported for older imports
from ..store import check_study_dir as _check_study_dir
from .diagnostics import DEFAULT_COLLAPSE_THRESHOLD, gate_diagnostics
from .metrics import task_metrics
from .quantities import COSTS, GATE_STATISTICS, gate_quantity
from .status import FINISHED, run_status

__all__ = [
    "RESULTS_FILE",
    "ID_COLUMNS",
    "STATUS_COLUMN",
    "VARIANT_COLUMNS",
    "SPLIT_COLUMNS",
    "RESULTS_COLUMNS",
    "study_runs",
    "study_reference",
    "run_rows",
    "tidy_results",
    "write_results",
    "load_results",
    "is_results_csv",
    "read_results_csv",
    "variant_fields",
    "per_run",
]

ID_COLUMNS = ("run_id", "variant", "seed")
STATUS_COLUMN = "status"
VARIANT_COLUMNS = ("kind", "activation", "candidates", "gate", "gate_source", "gate_hidden", "temperature",
                   "entropy_weight", "max_epochs", "patience", "lr", "weight_decay", "batch_size", "hidden",
                   "dataset")
SPLIT_COLUMNS = ("n_train", "n_val", "n_test")
RESULTS_COLUMNS = (*ID_COLUMNS, STATUS_COLUMN, *VARIANT_COLUMNS, *SPLIT_COLUMNS, "metric", "group", "value")
_STRING_COLUMNS = ("run_id", "variant", STATUS_COLUMN, "kind", "activation", "candidates", "gate", "gate_source",
                   "hidden",
                   "dataset", "metric", "group")


def _variant_record(cfg: RunConfig) -> dict[str, Any]:
    act = cfg.activation
    fixed = act.kind == "fixed"
    gated = act.kind == "gated"  # other kinds (learnable families) have no gate fields
    gated_input = gated and act.gate == "input"
    nan = float("nan")
    return {
        "kind": act.kind,
        "activation": act.activation if fixed else "",
        "candidates": "+".join(act.candidates) if gated else "",
        "gate": act.gate if gated else "",
        "gate_source": act.gate_source if gated_input else "",
        "gate_hidden": float(act.gate_hidden) if gated_input else nan,
        "temperature": float(act.temperature) if gated else nan,
        "entropy_weight": float(cfg.train.entropy_weight),
        "max_epochs": cfg.train.max_epochs,
        "patience": cfg.train.patience,
        "lr": cfg.train.lr,
        "weight_decay": cfg.train.weight_decay,
        "batch_size": cfg.train.batch_size,
        "hidden": "-".join(str(w) for w in cfg.backbone.hidden),
        "dataset": cfg.data.dataset,
    }


def _split_sizes(folder: Path) -> dict[str, float]:
    split = store.read_preprocessing(folder).get("split", {})
    return {f"n_{part}": float(len(split[part])) if isinstance(split.get(part), list) else float("nan")
            for part in ("train", "val", "test")}


def run_rows(
    run_folder: Path, cfg: RunConfig | None = None, collapse_threshold: float = DEFAULT_COLLAPSE_THRESHOLD
) -> list[dict[str, Any]]:
    """Tidy rows of one run folder: every metric, cost and (finished runs only) gate statistic.

    Args:
        run_folder: The run folder.
        cfg: Its config (read from ``config.json`` when omitted).
        collapse_threshold: For the ``gate<layer>_collapsed`` statistic.

    Returns:
        One dict per quantity with the keys of :data:`RESULTS_COLUMNS`.
    """
    folder = Path(run_folder)
    cfg = cfg if cfg is not None else store.read_run_config(folder)
    metrics = store.read_metrics(folder)
    status = run_status(metrics, str(folder / "metrics.json"))
    base = {"run_id": folder.name, "variant": cfg.variant, "seed": cfg.seed, STATUS_COLUMN: status,
            **_variant_record(cfg), **_split_sizes(folder)}
    values: list[tuple[str, str, float]] = []
    for name in task_metrics("regression" if "rmse" in metrics else "classification"):
        values.append((name, "performance", metrics.get(name, float("nan"))))
    for name in COSTS:
        values.append((name, "cost", metrics.get(name, float("nan"))))
    # a diverged run's gates may be NaN: it has no gate statistics
    for diag in gate_diagnostics(folder, collapse_threshold) if status == FINISHED else []:
        layer = diag["layer"]
        for stat in GATE_STATISTICS:
            values.append((gate_quantity(layer, stat), "gate", diag[stat]))
        for cand, share in diag["argmax_share"].items():
            values.append((gate_quantity(layer, f"argmax_{cand}"), "gate", share))
    rows = []
    for name, group, value in values:
        v = float(value) if value is not None else float("nan")
        rows.append({**base, "metric": name, "group": group, "value": v})
    return rows


def tidy_results(study_dir: Path, collapse_threshold: float = DEFAULT_COLLAPSE_THRESHOLD) -> pd.DataFrame:
    """The study's tidy results table, rebuilt from its run folders.

    One row per run folder (finished or diverged, see ``status``) and
    quantity (performance metrics, costs, and gate statistics of each gated
    layer of a finished run), columns :data:`RESULTS_COLUMNS`.
    ``DataFrame.attrs["reference"]`` holds the study's reference variant
    from ``study.json`` (or ``None``).

    Args:
        study_dir: The study folder.
        collapse_threshold: For the ``gate<layer>_collapsed`` statistic.

    Raises:
        RunStoreError: The folder does not exist or a run folder is corrupt.
    """
    from .diagnostics import check_collapse_threshold

    check_collapse_threshold(collapse_threshold)  # a bad value had been reported as an unusable run folder
    rows: list[dict[str, Any]] = []
    found = list(study_runs(study_dir))
    note = store.unfinished_note(Path(study_dir), (cfg for _, cfg in found))
    if note is not None:  # an interrupted study: every table of it says so (the CLI prints one line)
        warnings.warn(note, stacklevel=2)
    # each folder read, verified and parsed in forked workers when there are many (learnact._processes.fork_map)
    for run in fork_map(lambda fc: run_rows(fc[0], fc[1], collapse_threshold), found, available_cores()):
        rows.extend(run)
    table = pd.DataFrame(rows, columns=list(RESULTS_COLUMNS))
    table["seed"] = table["seed"].astype(np.int64)
    table.attrs["reference"] = study_reference(study_dir)
    return table


def write_results(study_dir: Path, collapse_threshold: float = DEFAULT_COLLAPSE_THRESHOLD, *,
                  table: pd.DataFrame | None = None) -> Path:
    """Rebuild the tidy table from the run folders and write ``results.csv``.

    The file is written to a temporary name and renamed, so a reader never
    sees half a table; a failed write (a full disk) leaves no temporary file.
    ``table``: the study's :func:`tidy_results`, when the caller has just
    built it (it is written as it is, not rebuilt).

    Returns:
        The path of ``results.csv`` in the study folder.

    Raises:
        RunStoreError: A run folder is corrupt, or an OS error while writing.
    """
    folder = _check_study_dir(study_dir)
    if table is None:
        table = tidy_results(folder, collapse_threshold)
    path = folder / RESULTS_FILE
    with store.atomic_write(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def load_results(study_dir: Path) -> pd.DataFrame:
    """Read ``results.csv`` back: the same columns and dtypes as :func:`tidy_results`.

    Raises:
        RunStoreError: The folder or file is missing, or the file lacks columns.
    """
    folder = _check_study_dir(study_dir)
    path = folder / RESULTS_FILE
    if not path.is_file():
        raise RunStoreError(f"no {RESULTS_FILE} in {str(folder)!r}; build it with "
                            "learnact.evaluation.write_results(study_dir)")
    table = _read_table(path, "rebuild it with write_results", RunStoreError)
    table.attrs["reference"] = study_reference(folder)
    return table


def _read_table(path: Path, fix: str, error: type[Exception]) -> pd.DataFrame:
    """``path`` read as a results table (columns :data:`RESULTS_COLUMNS`, in that order, and their dtypes)."""
    try:
        table = pd.read_csv(path, dtype={c: str for c in _STRING_COLUMNS}, keep_default_na=False,
                            na_values={c: ["", "nan", "NaN"] for c in RESULTS_COLUMNS if c not in _STRING_COLUMNS})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise error(f"corrupt {str(path)!r} ({' '.join(str(exc).split())}); {fix}") from None
    missing = [c for c in RESULTS_COLUMNS if c not in table.columns]
    if missing:
        raise error(f"{str(path)!r} lacks columns {missing}; {fix}")
    table = table[list(RESULTS_COLUMNS)]
    for column in RESULTS_COLUMNS:
        if column in _STRING_COLUMNS or pd.api.types.is_numeric_dtype(table[column]):
            continue
        numbers = pd.to_numeric(table[column], errors="coerce")
        i = int(np.flatnonzero((numbers.isna() & table[column].notna()).to_numpy())[0])
        raise error(f"{str(path)!r}: column {column!r} holds {table[column].iloc[i]!r} at data row {i + 1} "
                    f"(line {i + 2} of the file), not a number; {fix}")
    seeds = table["seed"].to_numpy(np.float64)
    if not np.array_equal(seeds, np.round(seeds)):  # NaN included
        i = int(np.flatnonzero(~(seeds == np.round(seeds)))[0])
        raise error(f"{str(path)!r}: column 'seed' holds {table['seed'].iloc[i]!r} at data row {i + 1} "
                    f"(line {i + 2} of the file), not a whole number; {fix}")
    table["seed"] = table["seed"].astype(np.int64)
    return table


def is_results_csv(path: Path) -> bool:
    """Whether the CSV file ``path`` is a results table, as :func:`write_results` writes ``results.csv``
    (its header holds :data:`RESULTS_COLUMNS`), rather than a CSV of runs (one row per run)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            header = next(csv.reader(file), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False  # the CSV reader's own checks say what is wrong with it
    return set(RESULTS_COLUMNS) <= {c.strip() for c in header}


def read_results_csv(path: Path | str) -> pd.DataFrame:
    """A results table saved as a CSV file, anywhere (a copy of a study's ``results.csv``, or several
    concatenated), checked as :func:`tidy_results` would have built it.

    Unlike :func:`load_results`, the file is not trusted to come from a
    study: every ``status`` must be ``finished`` or ``diverged``, a run's
    rows must agree on its variant, seed, status and split sizes, a quantity
    may appear once per run, one run per variant, seed and data set, no
    finished run's value may be infinite, and each metric must lie in its
    range (:data:`~learnact.store.METRIC_RANGES`, what the store checks in
    every ``metrics.json``). ``attrs["reference"]`` is ``None``.

    Raises:
        DataError: A check above fails; the message names the file, the row and the fix.
    """
    from ..exceptions import DataError
    from .quantities import describe_quantity
    from .status import DIVERGED

    path = Path(path)
    fix = "fix that row, or compare the study folder the file came from"
    table = _read_table(path, fix, DataError)
    if table.empty:
        raise DataError(f"{str(path)!r} has no rows; {fix}")

    def row(i: int) -> str:
        return f"data row {i + 1} (line {i + 2} of the file)"

    status = table["status"].to_numpy(dtype=object)
    bad = ~np.isin(status, [FINISHED, DIVERGED])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{str(path)!r}: status {status[i]!r} at {row(i)} is neither {FINISHED!r} nor "
                        f"{DIVERGED!r}; {fix}")
    dup = table.duplicated(["run_id", "metric"], keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(f"{str(path)!r}: run {table['run_id'].iloc[i]!r} has {table['metric'].iloc[i]!r} twice "
                        f"(again at {row(i)}); keep one row per run and quantity")
    for column in ("variant", "seed", "status", "dataset", *SPLIT_COLUMNS):
        spread = table.groupby("run_id", sort=False)[column].nunique(dropna=False)
        if (spread > 1).any():
            run = str(spread.index[np.flatnonzero((spread > 1).to_numpy())[0]])
            raise DataError(f"{str(path)!r}: the rows of run {run!r} disagree on {column!r}; {fix}")
    runs = table.drop_duplicates("run_id")
    twice = runs.duplicated(["variant", "seed", "dataset"], keep=False).to_numpy()
    if twice.any():
        first = runs[twice].iloc[0]
        ids = runs[twice & (runs["variant"] == first["variant"]).to_numpy()
                   & (runs["seed"] == first["seed"]).to_numpy()]["run_id"]
        on = f", data set {first['dataset']!r}" if first["dataset"] else ""
        raise DataError(f"{str(path)!r} has {len(ids)} runs of variant {first['variant']!r}, seed {first['seed']}"
                        f"{on} ({', '.join(ids)}); "
                        "keep one run per variant and seed (a comparison pairs runs by seed)")
    value = table["value"].to_numpy(np.float64)
    finished = (table["status"] == FINISHED).to_numpy()
    bad = finished & np.isinf(value)  # NaN is what a run folder may hold too (a metric undefined on its test rows)
    metric = table["metric"].to_numpy(dtype=object)
    for name, (low, high) in METRIC_RANGES.items():  # the ranges the store checks in every metrics.json
        bad |= (metric == name) & ((value < low) | (value > high))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        name = str(metric[i])
        valid = (f"; {name} lies in [{METRIC_RANGES[name][0]:g}, {METRIC_RANGES[name][1]:g}]"
                 if name in METRIC_RANGES and not np.isinf(value[i]) else "")
        raise DataError(f"{str(path)!r}: run {table['run_id'].iloc[i]!r} has {name} = {value[i]:g} at {row(i)}"
                        f"{valid}; {fix}")
    performance = (table["group"] == "performance").to_numpy()
    for name in dict.fromkeys(table["metric"][performance]):
        try:
            describe_quantity(str(name))
        except ValueError as exc:
            raise DataError(f"{str(path)!r}: {exc}; {fix}") from None
    table.attrs["reference"] = None
    return table


def variant_fields(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per variant (in table order) with its :data:`VARIANT_COLUMNS`."""
    cols = [c for c in ("variant", *VARIANT_COLUMNS) if c in tidy.columns]
    return tidy[cols].drop_duplicates("variant").reset_index(drop=True)


def per_run(tidy: pd.DataFrame) -> pd.DataFrame:
    """The tidy table spread out: one row per run, one column per quantity.

    A view of :func:`tidy_results` (or :func:`load_results`), not a second
    reading of the run folders: ``run_id, variant, seed, status`` (where the
    table has them), then the quantities in the order they first appear
    (metrics, costs, gate statistics; NaN where a run lacks one, e.g. a
    fixed run's gate statistics), rows in table order.

    Raises:
        ValueError: ``tidy`` lacks the ``run_id``, ``metric`` or ``value`` column.
    """
    missing = [c for c in ("run_id", "metric", "value") if c not in tidy.columns]
    if missing:
        raise ValueError(f"per_run needs the tidy results table (tidy_results or load_results); it lacks {missing}")
    keys = [c for c in ("run_id", "variant", "seed", STATUS_COLUMN) if c in tidy.columns]
    runs = tidy[keys].drop_duplicates("run_id").set_index("run_id")
    values = tidy.pivot(index="run_id", columns="metric", values="value")
    quantities = list(dict.fromkeys(tidy["metric"].astype(str)))
    wide = runs.join(values[quantities]).reset_index()
    wide.columns.name = None
    return wide
