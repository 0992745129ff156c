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


@pytest.mark.parametrize("factor", [1e-300, 1e-160])
def test_a_regression_target_too_small_to_standardise_is_refused(tmp_path, factor):
    # np.std underflowed to 0 (or lost its digits), the scale fell back to 1: trained in wrong units, R² 0.0
    y = np.random.default_rng(1).normal(size=60) * factor
    with pytest.raises(DataError) as caught:
        load_dataset(_regression_csv(tmp_path, y), task="regression")
    assert str(caught.value).startswith(f"target column 'y' of CSV '{tmp_path / 'd.csv'}' is too small to "
                                        f"standardise (standard deviation {np.std(y / factor) * factor:.3g}; the "
                                        f"smallest is 6.72e-139")
    assert str(caught.value).endswith("rescale it, e.g. multiply it by a power of 10")


def test_a_small_target_above_the_limit_is_scaled_as_numpy_scales_it(tmp_path):
    y = np.random.default_rng(1).normal(size=60) * 1e-130
    ds = load_dataset(_regression_csv(tmp_path, y), task="regression")
    split = split_dataset(ds, 2)
    y_tr = ds.y[np.concatenate([split.idx_train, split.idx_val])]
    assert split.target_scale == pytest.approx(np.std(y_tr), rel=1e-14)
    assert split.target_mean == pytest.approx(np.mean(y_tr), rel=1e-14)
    assert split.target_scale == pytest.approx(np.std(y_tr * 1e130) * 1e-130, rel=1e-12)  # no digits lost
    np.testing.assert_allclose(split.targets(split.y_test), ds.y[split.idx_test], rtol=1e-12)


def test_a_target_that_varies_only_in_rounding_is_effectively_constant(tmp_path):
    y = 1.0 + np.tile([0.0, np.finfo(np.float64).eps], 30)  # two neighbouring float64 numbers
    assert np.ptp(y) > 0
    with pytest.raises(DataError, match=r"target column 'y' of CSV .* is effectively constant \(standard deviation "
                                        r"\S+e-16 around mean 1: float64 rounding\); nothing to regress"):
        load_dataset(_regression_csv(tmp_path, y), task="regression")


def test_a_constant_training_part_scales_by_one_and_a_spread_one_by_its_sd():
    assert target_scaling(np.full(5, 3.0), "y") == (3.0, 1.0)
    y = np.array([1.0, 2.0, 4.0, 7.0])
    assert target_scaling(y, "y") == (np.mean(y), np.std(y))


def test_a_training_part_too_small_to_standardise_is_refused_before_training():
    # the whole column has a spread, the training part of seed 1 does not (its one large value lies in the test part)
    from sklearn.model_selection import train_test_split

    from learnact.data import check_splits

    rng = np.random.default_rng(0)
    y = rng.normal(size=40) * 1e-200
    test_row = int(train_test_split(np.arange(40), test_size=0.25, random_state=1)[1][0])
    y[test_row] = 1.0
    ds = Dataset("mine", rng.normal(size=(40, 2)), y, ("a", "b"), (), task="regression")
    with pytest.raises(DataError, match=r"^the target of data set 'mine' \(training part of seed 1\) is too small "
                                        r"to standardise"):
        check_splits(ds, 0.25, 0.2, seed=1)


def _labelled_csv(tmp_path: Path, labels) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(len(labels), 2)), columns=["a", "b"]).assign(label=labels)
    frame.to_csv(tmp_path / "d.csv", index=False)
    return str(tmp_path / "d.csv")


def test_an_infinite_class_label_is_refused_by_row(tmp_path):
    # 0/1 labels with inf in 6 rows had trained with classes ['0.0', '1.0', 'inf']
    labels = np.tile([0.0, 1.0], 20)
    labels[[3, 8, 9, 20, 30, 31]] = np.inf
    labels[8] = -np.inf
    with pytest.raises(DataError) as caught:
        load_dataset(_labelled_csv(tmp_path, labels))
    assert str(caught.value) == (f"target column 'label' of CSV '{tmp_path / 'd.csv'}' has infinite values (first: "
                                 f"data row 4 (line 5 of the file): inf); a class label must be finite: replace them "
                                 f"or drop those rows")


def test_class_labels_differing_only_in_surrounding_whitespace_are_one_class(tmp_path):
    labels = np.array(["cat", "dog"] * 20, dtype=object)
    labels[[2, 4]] = "cat "
    labels[7] = " dog"
    labels[9] = "\tdog  "
    ds = load_dataset(_labelled_csv(tmp_path, labels))
    assert ds.class_names == ("cat", "dog")
    np.testing.assert_array_equal(ds.y, np.tile([0, 1], 20))
    labels[11] = "  "
    with pytest.raises(DataError, match=r"target column 'label' of CSV .* has labels that are only whitespace "
                                        r"\(first: data row 12 \(line 13 of the file\): '  '\); fill them"):
        load_dataset(_labelled_csv(tmp_path, labels))


def test_numeric_class_labels_keep_their_names(tmp_path):
    ds = load_dataset(_labelled_csv(tmp_path, np.tile([1, 2, 10], 10)))
    assert ds.class_names == ("1", "10", "2") and ds.y.tolist()[:3] == [0, 2, 1]
