"""Results of a user's own training loop, read from a CSV file of runs, as a tidy table.

The file has one row per run: a ``variant`` column (text), a ``seed`` column
(whole numbers), one or more metric columns (numbers), and optionally the
run's split sizes ``n_train`` and ``n_test`` (rows; ``n_val`` is accepted and
not used). Two runs with the same seed are paired, as in a study: the seed
should fix the data split as well as the initialisation.

:func:`read_runs_csv` checks the file and returns the tidy table that
:func:`~learnact.evaluation.comparison.paired_comparisons` takes, with the
direction of every metric: from the quantity registry for a known name
(``accuracy``, ``log_loss``, ``train_time_s``, ...), else as the user
declares it. A column with no known or declared direction is left out of
the comparisons (and listed), so no verdict depends on a guessed direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.sources import check_feature_frame, read_table
from ..exceptions import DataError
from ..store import METRIC_RANGES
from .quantities import describe_quantity
from .status import FINISHED

__all__ = ["RUN_KEY_COLUMNS", "RUN_SIZE_COLUMNS", "UserResults", "read_runs_csv"]

RUN_KEY_COLUMNS = ("variant", "seed")
"""The columns that name a run in a CSV of runs."""

RUN_SIZE_COLUMNS = ("n_train", "n_val", "n_test")
"""Optional split-size columns of a CSV of runs (rows); every other column is a metric."""

_FORMAT = "one row per run with columns variant, seed and one or more numeric metric columns"


@dataclass(frozen=True)
class UserResults:
    """A CSV of runs, checked and made tidy.

    Attributes:
        tidy: One row per run and metric, columns ``run_id, variant, seed,
            status, n_train, n_val, n_test, metric, group, value`` (every run
            ``finished``; split sizes NaN when the file has none).
        metrics: The metric columns, in file order.
        directions: Whether higher is better, per metric with a known or
            declared direction (``None`` for a registry quantity with no
            better direction, such as ``best_epoch``).
        undirected: Metric columns with neither, in file order; they cannot be compared.
        test_train_ratio: ``None`` when the file gives ``n_train`` and
            ``n_test`` (the comparison uses them); else ``0.0``, the ordinary
            paired t-test.
    """

    tidy: pd.DataFrame
    metrics: tuple[str, ...]
    directions: dict[str, bool | None]
    undirected: tuple[str, ...]
    test_train_ratio: float | None


def _directions(metrics: Sequence[str], higher: Sequence[str], lower: Sequence[str],
                where: str) -> tuple[dict[str, bool | None], tuple[str, ...]]:
    for flag, names in (("--higher-is-better", higher), ("--lower-is-better", lower)):
        for name in names:
            if name not in metrics:
                raise DataError(f"{flag} {name!r}: {where} has no such metric column; metric columns: "
                                f"{', '.join(metrics)}")
    both = sorted(set(higher) & set(lower))
    if both:
        raise DataError(f"metric {both[0]!r} is declared both higher- and lower-is-better; keep one of the two")
    directions: dict[str, bool | None] = {}
    undirected = []
    for name in metrics:
        try:
            known: bool | None = describe_quantity(name).higher_is_better
        except ValueError:
            if name in higher or name in lower:
                directions[name] = name in higher
            else:
                undirected.append(name)
            continue
        declared = True if name in higher else False if name in lower else known
        if known is not None and declared != known:
            word = "higher" if known else "lower"
            raise DataError(f"metric {name!r} is a known quantity where {word} is better; drop the "
                            f"{'--lower-is-better' if known else '--higher-is-better'} {name} option")
        directions[name] = declared  # a registry quantity with no better direction (best_epoch) takes the user's
    return directions, tuple(undirected)


def _row_of(i: int) -> str:
    return f"data row {i + 1} (line {i + 2} of the file)"


def read_runs_csv(path: Path | str, higher_is_better: Sequence[str] = (),
                  lower_is_better: Sequence[str] = ()) -> UserResults:
    """Read and check a CSV of runs from a user's own training loop.

    Args:
        path: The CSV file: one row per run, columns ``variant``, ``seed``,
            optionally ``n_train``/``n_val``/``n_test``, and metric columns.
        higher_is_better: Metric columns outside the quantity registry where
            higher is better (e.g. a custom score).
        lower_is_better: Metric columns outside the registry where lower is
            better (e.g. ``loss``).

    Returns:
        The tidy table, metric directions and the ratio rule; see :class:`UserResults`.

    Raises:
        DataError: The file is missing or unreadable; ``variant`` or ``seed``
            is missing; a seed is not a whole number; a metric column holds
            text, missing values or infinities; a variant and seed appear
            twice; split sizes are not positive whole numbers or only one of
            ``n_train``/``n_test`` is given; a declared direction names no
            metric column or contradicts the registry. The message names the
            column, the first bad row and the fix.
    """
    path = Path(path)
    where = f"results CSV {str(path)!r}"
    if not path.is_file():
        raise DataError(f"{where} does not exist; give a study folder or a CSV file ({_FORMAT})")
    frame = read_table(path)  # its errors name the fix (empty, not UTF-8, ragged rows, repeated names)
    frame.columns = [str(c).strip() for c in frame.columns]
    if "variant" in frame.columns and path.suffix.lower() != ".parquet":
        # the names as written: pandas reads a variant called None, NA, null or nan as a missing value
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            names = pd.read_csv(path, usecols=[list(frame.columns).index("variant")], dtype=str,
                                keep_default_na=False, na_values=[""], index_col=False).iloc[:, 0]
        frame["variant"] = names.to_numpy()
    for key in RUN_KEY_COLUMNS:
        if key not in frame.columns:
            raise DataError(f"{where} has no {key!r} column (columns: {', '.join(frame.columns)}); write {_FORMAT}")
    if "dataset" in frame.columns:  # it had been taken for a metric column of text ("encode them as numbers")
        names = list(dict.fromkeys(frame["dataset"].astype(str)))
        if len(names) > 1:
            raise DataError(f"{where} has a 'dataset' column with {len(names)} data sets ({', '.join(names[:5])}"
                            f"{', ...' if len(names) > 5 else ''}); a CSV of runs is compared on one data set: "
                            "write one file per data set (or keep one data set's rows), or run the study as a suite "
                            "(learnact compare SUITE_FOLDER ranks variants across data sets)")
        frame = frame.drop(columns="dataset")
    if frame.columns.duplicated().any():
        dup = str(frame.columns[frame.columns.duplicated()][0])
        raise DataError(f"{where} has two columns named {dup!r}; rename one")
    metrics = tuple(c for c in frame.columns if c not in RUN_KEY_COLUMNS and c not in RUN_SIZE_COLUMNS)
    if not metrics:
        raise DataError(f"{where} has no metric column (columns: {', '.join(frame.columns)}); write {_FORMAT}")
    if frame.empty:
        raise DataError(f"{where} has no rows; write {_FORMAT}")
    sizes = [c for c in RUN_SIZE_COLUMNS if c in frame.columns]
    check_feature_frame(frame[["seed", *sizes]], where, label=frame["variant"], kind="seed or split-size")
    check_feature_frame(frame[list(metrics)], where, kind="metric")
    for name in metrics:  # a known metric's range (accuracy in [0, 1]): 1.9 is a typo, not a result to rank
        if name not in METRIC_RANGES:
            continue
        low, high = METRIC_RANGES[name]
        values = frame[name].to_numpy(np.float64)
        bad = (values < low) | (values > high)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            valid = (f"lie in [{low:g}, {high:g}]" if math.isfinite(low) and math.isfinite(high)
                     else f"be >= {low:g}" if math.isfinite(low) else f"be <= {high:g}")
            percent = (low, high) == (0.0, 1.0) and bool(((values >= 0) & (values <= 100)).all())
            fix = "fix that value, or divide the column by 100 if it holds percentages" if percent else "fix that value"
            raise DataError(f"{where}: column {name!r} holds {frame[name].iloc[i]} at {_row_of(i)}; {name} must "
                            f"{valid}: {fix}")
    for column in ("seed", *sizes):
        values = frame[column].to_numpy(np.float64)
        bad = values != np.round(values)
        if column != "seed":
            bad |= values < 1
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            need = "whole numbers" if column == "seed" else "positive whole numbers (rows)"
            raise DataError(f"{where}: column {column!r} holds {need}, got {frame[column].iloc[i]} at {_row_of(i)}; "
                            "fix that value")
    if ("n_train" in frame.columns) != ("n_test" in frame.columns):
        missing = "n_test" if "n_train" in frame.columns else "n_train"
        raise DataError(f"{where} has one split-size column without {missing!r}; give both n_train and n_test "
                        "(rows), or neither")
    variant = frame["variant"].astype(str).str.strip()
    seed = frame["seed"].to_numpy(np.float64).astype(np.int64)
    keys = pd.DataFrame({"variant": variant, "seed": seed})
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup & (keys == keys[dup].iloc[0]).all(axis=1).to_numpy())
        raise DataError(f"{where} has {len(rows)} rows for variant {variant.iloc[rows[0]]!r}, seed "
                        f"{seed[rows[0]]} ({', '.join(_row_of(int(i)) for i in rows)}); keep one row per run "
                        "(average repeated runs first, or give them different seeds)")
    directions, undirected = _directions(metrics, higher_is_better, lower_is_better, where)
    nan = np.full(len(frame), np.nan)
    base = pd.DataFrame({
        "run_id": [f"{v}__s{s}" for v, s in zip(variant, seed, strict=True)], "variant": variant, "seed": seed,
        "status": FINISHED,
        **{c: frame[c].to_numpy(np.float64) if c in frame.columns else nan for c in RUN_SIZE_COLUMNS},
    })
    parts = []
    for name in metrics:
        try:
            group = describe_quantity(name).group
        except ValueError:
            group = "performance"
        parts.append(base.assign(metric=name, group=group, value=frame[name].to_numpy(np.float64)))
    tidy = pd.concat(parts, ignore_index=True)
    tidy.attrs["reference"] = None
    ratio = None if "n_train" in frame.columns else 0.0
    return UserResults(tidy, metrics, directions, undirected, ratio)
