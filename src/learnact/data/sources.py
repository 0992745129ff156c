"""Data sources: built-in scikit-learn sets and CSV tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Dataset", "load_dataset", "check_feature_frame", "check_scalable", "BUILTIN_DATASETS"]


@dataclass(frozen=True)
class Dataset:
    """A labelled table.

    Attributes:
        name: Built-in name or CSV path.
        X: Features, float64, shape ``(n, d)``.
        y: Integer class labels ``0..n_classes-1``, shape ``(n,)``.
        feature_names: ``d`` column names.
        class_names: Names of the classes, index = label.
        target: The label column of a CSV (``None`` for a built-in set).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    target: str | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def _breast_cancer() -> Dataset:
    from sklearn.datasets import load_breast_cancer

    b = load_breast_cancer()
    return Dataset(
        "breast_cancer",
        np.asarray(b.data, dtype=np.float64),
        np.asarray(b.target, dtype=np.int64),
        tuple(str(f) for f in b.feature_names),
        tuple(str(t) for t in b.target_names),
    )


def _wine() -> Dataset:
    from sklearn.datasets import load_wine

    b = load_wine()
    return Dataset(
        "wine",
        np.asarray(b.data, dtype=np.float64),
        np.asarray(b.target, dtype=np.int64),
        tuple(str(f) for f in b.feature_names),
        tuple(str(t) for t in b.target_names),
    )


BUILTIN_DATASETS = {"breast_cancer": _breast_cancer, "wine": _wine}


def _row(position: int) -> str:
    """Where row ``position`` (0-based, of the data) is: ``data row 4 (line 5 of the file)``.

    The header is line 1 of the file.
    """
    return f"data row {position + 1} (line {position + 2} of the file)"


def _first_bad(column: pd.Series, bad: np.ndarray) -> str:
    """``column 'b', data row 4 (line 5 of the file): 'oops'`` for the first ``True`` of ``bad``."""
    i = int(np.flatnonzero(bad)[0])
    value = column.iloc[i]
    shown = repr(value) if isinstance(value, str) else str(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"column {str(column.name)!r}, {_row(i)}: {shown}"


def check_feature_frame(features: pd.DataFrame, where: str, label: pd.Series | None = None, *,
                        kind: str = "feature") -> None:
    """Raise :class:`DataError` if feature columns hold missing values, text or infinities.

    The message names the columns and, for the first of them, the row and the value
    (``data row 4 (line 5 of the file)``: rows count from the first after the header).

    Args:
        features: The feature columns.
        where: How the message names the source (``"CSV 'd.csv'"``).
        label: The label column, checked for missing values too (listed after the features).
        kind: What the columns hold, as the message names them (``"feature"``, ``"metric"``).
    """
    import pandas as pd

    frame = features if label is None else pd.concat([features, label], axis=1)
    isna = frame.isna()
    missing = frame.columns[isna.any()].tolist()
    if missing:
        first = _first_bad(frame[missing[0]], isna[missing[0]].to_numpy())
        raise DataError(f"{where} has missing values in columns {missing} (first: {first}); fill or drop them first")
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        column = features[text[0]]
        as_numbers = pd.to_numeric(column, errors="coerce")
        first = ""
        if as_numbers.isna().any():
            first = f" (first: {_first_bad(column, as_numbers.isna().to_numpy())})"
        raise DataError(f"{where} has non-numeric {kind} columns {text}{first}; encode them as numbers first")
    values = features.to_numpy(np.float64)
    infinite = ~np.isfinite(values)
    if infinite.any():
        columns = [str(c) for c in features.columns[infinite.any(axis=0)]]
        j = int(np.flatnonzero(infinite.any(axis=0))[0])
        raise DataError(f"{where} has infinite values in columns {columns} (first: "
                        f"{_first_bad(features.iloc[:, j], infinite[:, j])}); replace them with finite numbers "
                        f"or drop those rows")


def check_scalable(features: pd.DataFrame, where: str) -> None:
    """Raise :class:`DataError` if a column's values are so large that standardising it overflows float64.

    A column's mean and variance (of any subset of its rows, such as a
    training part) stay finite while ``|x| <= sqrt(max_float64 / (4 n))``
    (``6.7e150`` for a million rows); larger values make the scaler return
    ``inf``/``NaN``, and training on them is meaningless.
    """
    values = features.to_numpy(np.float64)
    if values.size == 0:
        return
    limit = float(np.sqrt(np.finfo(np.float64).max / (4 * max(len(values), 1))))
    big = np.abs(values) > limit
    if big.any():
        j = int(np.flatnonzero(big.any(axis=0))[0])
        raise DataError(f"{where} has values too large to standardise in column {str(features.columns[j])!r} "
                        f"(first: {_first_bad(features.iloc[:, j], big[:, j])}; the limit for {len(values)} rows "
                        f"is {limit:.3g}); rescale the column (e.g. divide it by a power of 10) or take its log")


def _load_csv(path: Path, target: str | None) -> Dataset:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # pandas raises many types
        raise DataError(f"cannot read CSV {str(path)!r}: {exc}") from None
    if frame.shape[1] < 2 or len(frame) < 10:
        raise DataError(f"CSV {str(path)!r} needs at least 2 columns and 10 rows, got shape {frame.shape}")
    target = target or str(frame.columns[-1])
    if target not in frame.columns:
        raise DataError(f"target column {target!r} not in CSV {str(path)!r}; columns: {list(frame.columns)}")
    features = frame.drop(columns=[target])
    check_feature_frame(features, f"CSV {str(path)!r}", label=frame[target])
    check_scalable(features, f"CSV {str(path)!r}")
    classes, y = np.unique(frame[target].astype(str).to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"target column {target!r} has a single class; need at least 2")
    return Dataset(str(path), features.to_numpy(np.float64), y.astype(np.int64),
                   tuple(map(str, features.columns)), tuple(map(str, classes)), target)


def load_dataset(name: str, target: str | None = None) -> Dataset:
    """Load a built-in data set by name, or a CSV file by path.

    Args:
        name: ``"breast_cancer"`` (default of the paper), ``"wine"``, or a path
            ending in ``.csv``.
        target: Label column of a CSV (default: the last column).

    Raises:
        DataError: Unknown name, unreadable file, text or missing values.
    """
    if name in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name]()
    path = Path(name)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise DataError(f"CSV file {name!r} does not exist")
        return _load_csv(path, target)
    raise DataError(f"unknown dataset {name!r}; use one of {sorted(BUILTIN_DATASETS)} or a path to a .csv file")
