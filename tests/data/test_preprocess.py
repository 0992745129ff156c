"""Preprocessing (imputation, indicators, one-hot): scikit-learn's maths, fitted on the training part only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from learnact.data import Encoder, Preprocessing, load_dataset, split_dataset
from learnact.exceptions import CheckpointError, DataError


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "size": [1.0, 2.0, np.nan, 4.0, 4.0, 10.0, np.nan, 3.0],
        "colour": ["red", "blue", "red", None, "green", "red", "blue", "blue"],
        "count": [1, 2, 3, 4, 5, 6, 7, 8],
    })


@pytest.mark.parametrize("strategy", ["median", "most_frequent"])
@pytest.mark.parametrize("indicators", [False, True])
def test_the_encoder_equals_scikit_learns_imputer_and_one_hot_encoder(strategy, indicators):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    train, new = _frame(), pd.DataFrame({"size": [np.nan, 5.0], "colour": [None, "purple"], "count": [0, 9]})
    enc = Encoder.fit(train, Preprocessing(one_hot=True, impute=strategy, missing_indicators=indicators))
    parts = [("size", SimpleImputer(strategy=strategy), ["size"]),
             ("colour", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                      OneHotEncoder(handle_unknown="ignore", sparse_output=False)), ["colour"]),
             ("count", SimpleImputer(strategy=strategy), ["count"])]
    if indicators:
        parts.append(("missing", MissingIndicator(), ["size", "colour"]))
    ref = ColumnTransformer(parts).fit(train.astype({"colour": object}))
    for frame in (train, new):
        np.testing.assert_array_equal(enc.transform(frame), ref.transform(frame.astype({"colour": object})))
    names = ["size", "colour=blue", "colour=green", "colour=red", "count"]
    assert list(enc.output_names) == names + (["missing:size", "missing:colour"] if indicators else [])


def test_fill_values_by_hand_and_ties_to_the_smallest():
    enc = Encoder.fit(_frame(), Preprocessing(one_hot=True, impute="most_frequent"))
    # size: 4.0 twice (mode); colour: red and blue three times each -> "blue" (smallest); count: all once -> 1
    assert enc.fill == {"size": 4.0, "colour": "blue", "count": 1.0}
    assert Encoder.fit(_frame(), Preprocessing(one_hot=True, impute="median")).fill["size"] == 3.5


def test_the_encoder_is_fitted_on_the_training_part_only():
    ds = load_dataset("penguins", preprocessing=Preprocessing(one_hot=True, impute="median"))
    split = split_dataset(ds, seed=3, options=Preprocessing(one_hot=True, impute="median"))
    assert split.encoder is not None
    train_rows = np.concatenate([split.idx_train, split.idx_val])
    expected = ds.raw.iloc[train_rows]["bill_length_mm"].median()  # train + validation: the first split's train part
    assert split.encoder.fill["bill_length_mm"] == expected != ds.raw["bill_length_mm"].median()
    assert split.n_features == len(split.encoder.output_names) == len(split.scaler.mean)
    assert np.isfinite(split.X_train).all() and np.isfinite(split.X_test).all()
    # rows without missing values keep their values: the encoded test rows equal the encoder applied to them
    enc_test = (split.encoder.transform(ds.raw.iloc[split.idx_test]) - split.scaler.mean) / split.scaler.scale
    np.testing.assert_allclose(split.X_test, enc_test.astype(np.float32), rtol=1e-6)


def test_without_options_bad_data_names_the_option_that_helps(tmp_path):
    with pytest.raises(DataError, match=r"missing values in columns .*data.impute = \"median\""):
        load_dataset("penguins")
    with pytest.raises(DataError, match=r"missing values in columns .*data.impute = \"median\""):
        load_dataset("penguins", preprocessing=Preprocessing(one_hot=True))
    with pytest.raises(DataError, match=r"non-numeric feature columns \['island', 'sex'\].*data.one_hot = true"):
        load_dataset("penguins", preprocessing=Preprocessing(impute="median"))
    frame = _frame().assign(label=list("abababab"))
    path = tmp_path / "d.csv"
    pd.concat([frame] * 2).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing values .*data.impute"):
        load_dataset(str(path), "label")
    labels_missing = pd.concat([frame] * 2).assign(label=["a", None] * 8)
    labels_missing.to_csv(path, index=False)
    with pytest.raises(DataError, match="missing values in columns \\['label'\\]") as err:
        load_dataset(str(path), "label", Preprocessing(one_hot=True, impute="median"))
    assert "impute" not in str(err.value)  # missing labels are never imputed


def test_transform_refuses_what_the_run_never_learned():
    enc = Encoder.fit(_frame().dropna(), Preprocessing(one_hot=True, impute="median"))
    strict = Encoder.fit(_frame().dropna(), Preprocessing(one_hot=True))
    with pytest.raises(DataError, match="missing values in column 'size', which the run never imputed"):
        strict.transform(_frame())
    with pytest.raises(DataError, match="lacks feature columns \\['colour'\\]"):
        enc.transform(_frame().drop(columns=["colour"]))
    with pytest.raises(DataError, match="text in numeric column 'size'"):
        enc.transform(_frame().assign(size=["x"] * 8))
    with pytest.raises(DataError, match="infinite values in column 'count'"):
        enc.transform(_frame().assign(count=[np.inf] * 8))


def test_json_round_trip_and_tampering_is_refused():
    enc = Encoder.fit(_frame(), Preprocessing(one_hot=True, impute="median", missing_indicators=True))
    again = Encoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert again == enc
    np.testing.assert_array_equal(again.transform(_frame()), enc.transform(_frame()))
    for key, value in [("fill", {"size": "NaN"}), ("categories", {"colour": []}), ("columns", ["a", "a"]),
                       ("indicators", ["nope"]), ("kind", "standard")]:
        with pytest.raises(CheckpointError, match="malformed"):
            Encoder.from_dict({**enc.to_dict(), key: value})


def test_options_are_checked():
    with pytest.raises(ValueError, match="impute"):
        Preprocessing(impute="mean")
    with pytest.raises(ValueError, match="missing_indicators needs impute"):
        Preprocessing(missing_indicators=True)
