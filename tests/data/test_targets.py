"""Targets a study cannot use, refused when the data are loaded with a one-line message that names the row and
the fix: regression targets too large (or too small) to standardise, infinite or blank class labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from learnact.data import load_dataset, split_dataset
from learnact.data.sources import Dataset, scale_limit, target_scaling
from learnact.exceptions import DataError


def _regression_csv(tmp_path: Path, y: np.ndarray) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(len(y), 3)), columns=["a", "b", "c"]).assign(y=y)
    frame.to_csv(tmp_path / "d.csv", index=False)
    return str(tmp_path / "d.csv")


def test_a_regression_target_too_large_to_standardise_is_refused_by_row(tmp_path):
    # (x + noise) * 1e200: the training part's variance overflowed, the run saved target scale inf and every later
    # command called the study corrupt
    y = np.random.default_rng(1).normal(size=60) * 1e200
    with pytest.raises(DataError) as caught:
        load_dataset(_regression_csv(tmp_path, y), task="regression")
    limit = scale_limit(60)
    first = int(np.flatnonzero(np.abs(y) > limit)[0])
    assert (f"has values too large to standardise in column 'y' (first: column 'y', data row {first + 1} (line "
            f"{first + 2} of the file): {y[first]}; the limit for 60 rows is {limit:.3g}); rescale the column"
            in str(caught.value))
    # at the limit the scaling of every training part is finite and equals numpy's
    ds = load_dataset(_regression_csv(tmp_path, np.linspace(-1, 1, 60) * limit), task="regression")
    split = split_dataset(ds, 3)
    y_tr = ds.y[np.concatenate([split.idx_train, split.idx_val])]
    assert np.isfinite(split.target_scale) and split.target_scale == pytest.approx(np.std(y_tr), rel=1e-12)


def test_targets_given_without_a_table_are_checked_when_split(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 2))
    ds = Dataset("mine", X, np.full(40, 1e307) * np.tile([1, -1], 20), ("a", "b"), (), task="regression")
    with pytest.raises(DataError, match=r"^the target of data set 'mine' \(training part of seed 1\) is too large "
                                        r"to standardise .*largest \|y\| 1e\+307.*rescale it"):
        split_dataset(ds, 1)
    with pytest.raises(DataError, match="too large to standardise"):
        target_scaling(np.array([1e308, -1e308]), "y")
