"""The run folder's JSON lines and CSV are written faster than one json.dumps per record and pandas' CSV writer,
byte for byte as those write them (property tests against both)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from learnact import store

_scalars = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20), st.booleans(),
                     st.none(), st.text(alphabet=st.sampled_from(list('ab"{} ,:\\\n\u00e9')), max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                       max_leaves=6)
_records = st.lists(st.dictionaries(st.text(alphabet=st.sampled_from(list('ab}{, "')), max_size=4), _values,
                                    max_size=4), max_size=6)


def _reference_lines(records):
    return "".join(json.dumps(r, default=store._json_default) + "\n" for r in records)


@settings(max_examples=400, deadline=None)
@given(_records)
def test_json_lines_are_json_dumps_of_each_record(records):
    assert store._json_lines(records) == _reference_lines(records)


def test_json_lines_of_strings_that_look_like_a_cut_and_of_numpy_values():
    records = [{"reason": "a}, {b"}, {"x": np.float64(0.1), "w": [np.int64(3), np.float32(0.5)]}, {}, {"e": 1}]
    assert store._json_lines(records) == _reference_lines(records)
    history = [{"epoch": i, "train_loss": 1 / (i + 1), "gate_weights": [[0.2, 0.8]], "temperature": [0.7]}
               for i in range(300)]
    assert store._json_lines(history) == _reference_lines(history)
    assert store._json_lines([]) == "" and store._json_lines([1, 2]) == "1\n2\n"


_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n),
    st.lists(_floats, min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.lists(st.floats(1e-320, 1e300) | st.sampled_from([0.0, -0.0, 1e16, 1e-5, 123456789.123]), min_size=n,
             max_size=n))))
def test_csv_text_is_pandas_to_csv(columns):
    ints, floats, bools, magnitudes = columns
    frame = pd.DataFrame({"row": np.array(ints, dtype=np.int64), "prob": np.array(floats, dtype=np.float64),
                          "flag": bools, "gate1_tanh": np.array(magnitudes, dtype=np.float64)})
    assert store._csv_text(frame) == frame.to_csv(index=False)


def test_csv_text_leaves_other_columns_and_names_to_pandas():
    odd = [pd.DataFrame({"a,b": [1.0]}), pd.DataFrame({'q"': [1]}), pd.DataFrame({"p": np.float32([0.1, 0.7])}),
           pd.DataFrame({"s": ["x", "y,z"]}), pd.DataFrame({"p": pd.array([1, None], dtype="Int64")}),
           pd.DataFrame({"row": np.array([], dtype=np.int64)})]
    for frame in odd:
        assert store._csv_text(frame) == frame.to_csv(index=False)
