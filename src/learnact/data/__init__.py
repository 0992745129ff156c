"""Data: sources, optional preprocessing (imputation, one-hot), per-seed splits, scaling.

The names below load on first use: ``learnact list datasets`` reads the
registry in :mod:`.sources` without importing scikit-learn, which
:mod:`.splits` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .preprocess import Encoder, Preprocessing
    from .sources import BUILTIN_DATASETS, Dataset, load_dataset
    from .splits import Split, Standardizer, check_splits, split_dataset

__all__ = ["BUILTIN_DATASETS", "Dataset", "Encoder", "Preprocessing", "Split", "Standardizer", "check_splits",
           "load_dataset", "split_dataset"]

_HOME = {"Encoder": "preprocess", "Preprocessing": "preprocess", "BUILTIN_DATASETS": "sources", "Dataset": "sources",
         "load_dataset": "sources", "Split": "splits", "Standardizer": "splits", "check_splits": "splits",
         "split_dataset": "splits"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
