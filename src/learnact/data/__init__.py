"""Data: sources, optional preprocessing (imputation, one-hot), per-seed splits, scaling."""

from .preprocess import Encoder, Preprocessing
from .sources import BUILTIN_DATASETS, Dataset, load_dataset
from .splits import Split, Standardizer, check_splits, split_dataset

__all__ = ["BUILTIN_DATASETS", "Dataset", "Encoder", "Preprocessing", "Split", "Standardizer", "check_splits",
           "load_dataset", "split_dataset"]
