"""Data sources: built-in scikit-learn sets and CSV tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Dataset", "load_dataset", "check_feature_frame", "BUILTIN_DATASETS"]


@dataclass(frozen=True)
class Dataset:
    """A labelled table.

    Attributes:
        name: Built-in name or CSV path.
        X: Features, float64, shape ``(n, d)``.
        y: Integer class labels ``0..n_classes-1``, shape ``(n,)``.
        feature_names: ``d`` column names.
        class_names: Names of the classes, index = label.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]

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


def check_feature_frame(features: pd.DataFrame, where: str, extra_missing: list[str] | None = None) -> None:
    """Raise :class:`DataError` if feature columns hold missing values or text.

    Args:
        features: The feature columns.
        where: How the message names the source (``"CSV 'd.csv'"``).
        extra_missing: Further columns already known to have missing values (the label).
    """
    import pandas as pd

    missing = features.columns[features.isna().any()].tolist() + list(extra_missing or [])
    if missing:
        raise DataError(f"{where} has missing values in columns {missing}; fill or drop them first")
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        raise DataError(f"{where} has non-numeric feature columns {text}; encode them as numbers first")


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
    check_feature_frame(features, f"CSV {str(path)!r}", extra_missing=[target] if frame[target].isna().any() else [])
    classes, y = np.unique(frame[target].astype(str).to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"target column {target!r} has a single class; need at least 2")
    return Dataset(str(path), features.to_numpy(np.float64), y.astype(np.int64),
                   tuple(map(str, features.columns)), tuple(map(str, classes)))


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
