"""Data: sources, per-seed splits, scaling."""

from .sources import BUILTIN_DATASETS, Dataset, load_dataset
from .splits import Split, Standardizer, check_splits, split_dataset

__all__ = ["BUILTIN_DATASETS", "Dataset", "Split", "Standardizer", "check_splits", "load_dataset", "split_dataset"]
