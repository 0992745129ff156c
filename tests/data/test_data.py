import numpy as np
import pandas as pd
import pytest

from learnact import names as _names
from learnact.data import Standardizer, load_dataset, split_dataset
from learnact.data.preprocess import Preprocessing
from learnact.data.sources import DATASETS
from learnact.exceptions import DataError


def test_breast_cancer_shape(breast_cancer):
    assert breast_cancer.X.shape == (569, 30) and breast_cancer.n_classes == 2


def test_split_sizes_stratified_and_disjoint(breast_cancer):
    sp = split_dataset(breast_cancer, seed=7)
    assert (len(sp.y_train), len(sp.y_val), len(sp.y_test)) == (340, 86, 143)
    all_idx = np.concatenate([sp.idx_train, sp.idx_val, sp.idx_test])
    assert sorted(all_idx.tolist()) == list(range(569))
    overall = breast_cancer.y.mean()
    for part in (sp.y_train, sp.y_val, sp.y_test):
        assert abs(part.mean() - overall) < 0.02
    assert sp.X_train.dtype == np.float32


def test_scaler_uses_the_training_part_only(breast_cancer):
    sp = split_dataset(breast_cancer, seed=21)
    train_part = breast_cancer.X[np.concatenate([sp.idx_train, sp.idx_val])]
    np.testing.assert_allclose(sp.scaler.mean, train_part.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sp.scaler.scale, train_part.std(axis=0), rtol=1e-10)
    assert not np.allclose(sp.scaler.mean, breast_cancer.X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(sp.X_test, (breast_cancer.X[sp.idx_test] - sp.scaler.mean) / sp.scaler.scale,
                               rtol=1e-5, atol=1e-6)


def test_split_depends_on_seed(breast_cancer):
    a, b = split_dataset(breast_cancer, 1), split_dataset(breast_cancer, 2)
    assert not np.array_equal(a.idx_test, b.idx_test)
    np.testing.assert_array_equal(a.idx_test, split_dataset(breast_cancer, 1).idx_test)


def test_scaler_json_roundtrip(tmp_path, breast_cancer):
    sc = split_dataset(breast_cancer, 1).scaler
    sc.save(tmp_path / "p.json")
    back = Standardizer.load(tmp_path / "p.json")
    np.testing.assert_array_equal(back.mean, sc.mean)
    np.testing.assert_array_equal(back.transform(breast_cancer.X[:3]), sc.transform(breast_cancer.X[:3]))


def _csv(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_text(text)
    return str(p)


def test_csv_loads_and_bad_csvs_name_the_problem(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5},{'yes' if i % 2 else 'no'}" for i in range(20))
    ds = load_dataset(_csv(tmp_path, "a,b,label\n" + rows + "\n"))
    assert ds.X.shape == (20, 2) and ds.class_names == ("no", "yes")
    with pytest.raises(DataError, match=r"non-numeric feature columns \['b'\]"):
        load_dataset(_csv(tmp_path, "a,b,label\n" + "\n".join(f"{i},x{i},{i % 2}" for i in range(20))))
    with pytest.raises(DataError, match=r"missing values in columns \['b'\]"):
        load_dataset(_csv(tmp_path, "a,b,label\n" + "\n".join(f"{i},{'' if i == 3 else i},{i % 2}"
                                                             for i in range(20))))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match="unknown dataset 'iris2'"):
        load_dataset("iris2")


_ROWS = "".join(f"{i},{i * 0.5},{i % 2}\n" for i in range(20))


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "is empty; write a header row of column names, then one row per sample"),
    ("a,\u00e9t\n".encode("latin-1") + _ROWS.encode(), "is not UTF-8 text (invalid continuation byte); save it as UTF-8"),
    (b"a,b,label\n1,2,0\n3,4,5,6\n", "Expected 3 fields in line 3, saw 4; every row needs as many comma-separated "
                                      "fields as the header"),
    (("a,a,label\n" + _ROWS).encode(), "has two columns named 'a'; rename one"),
    (("a;b;label\n" + _ROWS.replace(",", ";")).encode(), "has 1 column(s), needs at least 2; its header looks "
                                                           "separated by ';': save it with commas"),
    (b"a,b,label\n1,2,0\n", "has 1 data rows, needs at least 10; add rows"),
    # every row one value longer than the header: pandas took the first column for the index, shifted the others
    (("a,b,label\n" + _ROWS.replace("\n", ",7\n")).encode(), "its rows have more fields than its header names; "
                                                           "every row needs as many comma-separated fields"),
])
def test_unreadable_csvs_name_the_problem_and_the_fix(tmp_path, content, expected):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        load_dataset(str(path))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_rows_ending_in_a_comma_are_read_as_the_header_names_them(tmp_path):
    # a trailing comma on every data row (a common export): pandas read the first column as the index, and the
    # labels landed under the wrong name (the error then blamed "missing values in ['label']")
    plain = load_dataset(_csv(tmp_path, "a,b,label\n" + _ROWS))
    trailing = load_dataset(_csv(tmp_path, "a,b,label\n" + _ROWS.replace("\n", ",\n")))
    assert trailing.feature_names == ("a", "b")
    np.testing.assert_array_equal(trailing.X, plain.X)
    np.testing.assert_array_equal(trailing.y, plain.y)


def test_a_column_named_like_a_pandas_rename_is_not_a_duplicate(tmp_path):
    """``a.1`` beside ``a`` is what pandas makes of a repeated ``a``; written so in the header, it is a name."""
    ds = load_dataset(_csv(tmp_path, "a,a.1,label\n" + _ROWS))
    assert ds.feature_names == ("a", "a.1") and ds.X.shape == (20, 2)


# --- data sets known by name: every entry of the registry, against its listed size and an independent loader ---


def test_the_dataset_registry_and_the_name_registry_agree():
    assert tuple(DATASETS) == _names.BUILTIN_DATASETS


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_named_dataset_loads_with_its_listed_size(name):
    if name in ("mnist1d", "penguins"):
        pytest.importorskip({"mnist1d": "mnist1d", "penguins": "palmerpenguins"}[name])
    spec = DATASETS[name]
    d = spec.load()
    assert d.name == name
    if d.raw is not None:  # text and missing values: encoded per split (the preprocessing options)
        assert d.raw.shape == (spec.rows, spec.features) and d.X.shape == (spec.rows, 0)
    else:
        assert d.X.shape == (spec.rows, spec.features)
        assert d.X.dtype == np.float64 and np.isfinite(d.X).all()
    assert len(d.feature_names) == spec.features and d.task == spec.task
    assert d.n_classes == spec.classes
    if spec.task == "classification":
        assert set(np.unique(d.y)) == set(range(spec.classes))
        assert min(np.bincount(d.y)) >= 0.05 * len(d.y)  # no near-empty class: stratified splits work
    else:
        assert d.y.dtype == np.float64 and np.isfinite(d.y).all() and np.ptp(d.y) > 0
    again = spec.load()
    assert np.array_equal(again.X, d.X) and np.array_equal(again.y, d.y)  # fixed data, whatever the seed


def test_bundled_sets_equal_scikit_learns_loaders():
    from sklearn import datasets

    for name, loader in [("iris", datasets.load_iris), ("digits", datasets.load_digits)]:
        ref = loader()
        d = load_dataset(name)
        assert np.array_equal(d.X, ref.data) and np.array_equal(d.y, ref.target)
        assert d.class_names == tuple(map(str, ref.target_names))


def test_synthetic_labels_follow_their_rule():
    xor = load_dataset("xor")
    assert np.array_equal(xor.y, (xor.X[:, 0] * xor.X[:, 1] > 0).astype(int))
    spirals = load_dataset("spirals")  # the two arms are point reflections of each other: opposite labels
    assert spirals.y[:250].tolist() == [0] * 250 and spirals.y[250:].tolist() == [1] * 250
    assert np.abs(spirals.X[:250].mean(axis=0) + spirals.X[250:].mean(axis=0)).max() < 0.1


def test_mnist1d_is_generated_locally_and_leaves_global_random_state_alone(monkeypatch):
    pytest.importorskip("mnist1d")
    import random
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    np.random.seed(123)
    random.seed(123)
    d = load_dataset("mnist1d")
    assert d.X.shape == (5000, 40) and np.bincount(d.y).tolist() == [500] * 10
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    load_dataset("mnist1d")
    assert (np.random.rand(), random.random()) == expected


def test_a_missing_data_package_gives_an_install_hint(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("mnist1d"):
            raise ImportError("No module named 'mnist1d'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(DataError, match=r"pip install 'learnact\[suites\]'"):
        load_dataset("mnist1d")


def test_an_error_names_the_line_of_the_file_across_blank_lines(tmp_path):
    # pandas skips blank lines: "data row 7 (line 8 of the file)" pointed two lines above the bad value
    rows = _ROWS.splitlines()
    rows[6] = "6,oops,0"
    text = "a,b,label\n\n" + "\n".join(rows[:3]) + "\n\n" + "\n".join(rows[3:]) + "\n"
    with pytest.raises(DataError, match=r"column 'b', data row 7 \(line 10 of the file\): 'oops'"):
        load_dataset(_csv(tmp_path, text))
    assert text.splitlines()[9] == "6,oops,0"


def _placeholder_csv(tmp_path, tokens: dict[int, str], column: str = "a") -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(30, 2)).round(3), columns=["a", "b"]).astype(object)
    for row, token in tokens.items():
        frame.loc[row, column] = token
    frame["label"] = [0, 1] * 15
    frame.to_csv(tmp_path / "d.csv", index=False)
    return str(tmp_path / "d.csv")


def test_a_numeric_column_with_placeholders_is_named_so_and_not_sent_to_one_hot(tmp_path):
    # UCI-style '?' for missing values: the message had said "non-numeric feature columns ['a'] ...; or one-hot encode
    # them", and following it one-hot encoded every distinct number
    with pytest.raises(DataError) as caught:
        load_dataset(_placeholder_csv(tmp_path, {4: "?", 9: "?"}))
    assert str(caught.value) == (
        f"CSV '{tmp_path / 'd.csv'}' has non-numeric feature columns ['a'] (first: column 'a', data row 5 (line 6 of "
        f"the file): '?'); column 'a' is numeric except '?' in 2 rows: if '?' marks missing values, make those fields "
        f"empty and impute them (data.impute = \"median\" in the study file, or --impute median), else correct them")
    with pytest.raises(DataError, match=r"column 'b' is numeric except '\?', '-' in 3 rows: if '\?' or '-' mark "
                                        r"missing values, make those fields empty \(the study imputes them\), else "
                                        r"correct them$"):
        load_dataset(_placeholder_csv(tmp_path, {1: "?", 2: "-", 20: "?"}, "b"),
                     preprocessing=Preprocessing(impute="median"))


def test_placeholders_in_two_columns_beside_a_text_column(tmp_path):
    path = _placeholder_csv(tmp_path, {3: "?"})
    frame = pd.read_csv(path).assign(colour=["red", "blue"] * 15)
    frame["b"] = frame["b"].astype(object)
    frame.loc[7, "b"] = "?"
    frame = frame[["colour", "a", "b", "label"]]
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    assert str(caught.value) == (
        f"CSV '{path}' has non-numeric feature columns ['colour', 'a', 'b'] (first: column 'a', data row 4 (line 5 of "
        f"the file): '?'); column 'a' is numeric except '?' in 1 row (columns ['b'] hold numbers with placeholders "
        f"too): if '?' marks missing values, make those fields empty and impute them (data.impute = \"median\" in "
        f"the study file, or --impute median), else correct them; encode ['colour'] as numbers (or one-hot encode "
        f"them: data.one_hot = true in the study file, or --one-hot)")


def test_a_column_of_text_still_names_one_hot_encoding(tmp_path):
    words = {i: w for i, w in enumerate(["red", "green", "blue"] * 8)}  # 24 of 30 rows are words
    with pytest.raises(DataError, match=r"non-numeric feature columns \['a'\] .*--one-hot\)$"):
        load_dataset(_placeholder_csv(tmp_path, words))
    with pytest.raises(DataError, match=r"non-numeric feature columns \['a'\]"):  # four distinct tokens: not a number
        load_dataset(_placeholder_csv(tmp_path, {1: "?", 2: "-", 3: "unk", 4: "x"}))
