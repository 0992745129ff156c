"""Data sources: data sets known by name (scikit-learn's bundled sets, synthetic sets, MNIST-1D) and CSV tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import DataError
from .preprocess import Preprocessing

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Dataset", "DatasetSpec", "load_dataset", "check_feature_frame", "check_scalable", "scale_limit",
           "target_scaling", "TARGET_SCALE_MIN", "BUILTIN_DATASETS", "DATASETS"]


@dataclass(frozen=True)
class Dataset:
    """A labelled table.

    Attributes:
        name: Built-in name or CSV path.
        X: Features, float64, shape ``(n, d)``.
        y: Integer class labels ``0..n_classes-1`` (float64 targets for a
            regression task), shape ``(n,)``.
        feature_names: ``d`` column names.
        class_names: Names of the classes, index = label (empty for regression).
        target: The label column of a CSV (``None`` for a built-in set).
        raw: The feature columns as read (text, missing values), when the
            study preprocesses them (:mod:`.preprocess`); ``X`` then has no
            columns, and each seed's split encodes ``raw`` with an encoder
            fitted on its training part.
        task: ``"classification"`` or ``"regression"``.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    target: str | None = None
    raw: pd.DataFrame | None = None
    task: str = "classification"

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for a regression task)."""
        return len(self.class_names)


def _bundled(name: str, loader: str) -> Dataset:
    """A classification set bundled with scikit-learn (no download)."""
    import sklearn.datasets

    b = getattr(sklearn.datasets, loader)()
    return Dataset(
        name,
        np.asarray(b.data, dtype=np.float64),
        np.asarray(b.target, dtype=np.int64),
        tuple(str(f) for f in b.feature_names),
        tuple(str(t) for t in b.target_names),
    )


def _breast_cancer() -> Dataset:
    return _bundled("breast_cancer", "load_breast_cancer")


def _wine() -> Dataset:
    return _bundled("wine", "load_wine")


def _iris() -> Dataset:
    return _bundled("iris", "load_iris")


def _digits() -> Dataset:
    return _bundled("digits", "load_digits")


SYNTHETIC_SEED = 0
"""Seed of every synthetic set: the data are fixed; the study's seeds vary the splits and the training."""


def _synthetic(name: str, X: np.ndarray, y: np.ndarray) -> Dataset:
    classes = np.unique(y)
    return Dataset(name, np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64),
                   tuple(f"x{i + 1}" for i in range(X.shape[1])), tuple(f"class_{int(c)}" for c in classes))


def _moons() -> Dataset:
    from sklearn.datasets import make_moons

    return _synthetic("moons", *make_moons(n_samples=500, noise=0.2, random_state=SYNTHETIC_SEED))


def _circles() -> Dataset:
    from sklearn.datasets import make_circles

    return _synthetic("circles", *make_circles(n_samples=500, noise=0.1, factor=0.5, random_state=SYNTHETIC_SEED))


def _spirals() -> Dataset:
    """Two interleaved spirals (1.5 turns each), Gaussian noise of sd 0.2 (Lang and Witbrock's benchmark)."""
    rng = np.random.default_rng(SYNTHETIC_SEED)
    n = 250
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi  # denser near the centre is avoided by the square root
    arm = np.column_stack([t * np.cos(t), t * np.sin(t)]) / np.pi
    X = np.vstack([arm, -arm]) + rng.normal(0, 0.2, (2 * n, 2))
    return _synthetic("spirals", X, np.repeat([0, 1], n))


def _xor() -> Dataset:
    """Uniform points in [-1, 1]^2, labelled by the sign of x1 * x2 (the XOR of the two signs)."""
    rng = np.random.default_rng(SYNTHETIC_SEED)
    X = rng.uniform(-1, 1, (500, 2))
    return _synthetic("xor", X, (X[:, 0] * X[:, 1] > 0).astype(np.int64))


def _classification() -> Dataset:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=1000, n_features=20, n_informative=8, n_redundant=4, n_classes=3,
                               n_clusters_per_class=2, class_sep=1.0, flip_y=0.02, random_state=SYNTHETIC_SEED)
    return _synthetic("classification", X, y)


def _gaussian_quantiles() -> Dataset:
    from sklearn.datasets import make_gaussian_quantiles

    return _synthetic("gaussian_quantiles", *make_gaussian_quantiles(
        n_samples=600, n_features=2, n_classes=3, random_state=SYNTHETIC_SEED))


def _mnist1d() -> Dataset:
    """MNIST-1D (Greydanus 2020) generated locally by ``mnist1d.data.make_dataset``; never downloaded."""
    import random

    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DataError("data set 'mnist1d' needs the mnist1d package: pip install 'learnact[suites]' "
                        "(or pip install mnist1d)") from None
    state, py_state = np.random.get_state(), random.getstate()  # make_dataset seeds the global generators
    try:
        d = make_dataset(get_dataset_args())  # 5,000 samples, seed 42: the published set's arguments
    finally:
        np.random.set_state(state)
        random.setstate(py_state)
    X = np.concatenate([d["x"], d["x_test"]])
    y = np.concatenate([d["y"], d["y_test"]])
    return replace(_synthetic("mnist1d", X, y), feature_names=tuple(f"t{i}" for i in range(X.shape[1])),
                   class_names=tuple(str(c) for c in range(10)))


def _regression(name: str, X: np.ndarray, y: np.ndarray, features: tuple[str, ...] | None = None) -> Dataset:
    names = features or tuple(f"x{i + 1}" for i in range(X.shape[1]))
    return Dataset(name, np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64), names, (),
                   task="regression")


def _diabetes() -> Dataset:
    from sklearn.datasets import load_diabetes

    b = load_diabetes()
    return _regression("diabetes", b.data, b.target, tuple(str(f) for f in b.feature_names))


FORMULAS: dict[str, tuple[str, int, Callable[[np.ndarray], np.ndarray]]] = {
    "exp_sin": ("exp(sin(pi*x1) + x2^2)", 2, lambda x: np.exp(np.sin(np.pi * x[:, 0]) + x[:, 1] ** 2)),
    "product": ("x1*x2", 2, lambda x: x[:, 0] * x[:, 1]),
    "ripple": ("sin(pi*(x1^2 + x2^2))", 2, lambda x: np.sin(np.pi * (x[:, 0] ** 2 + x[:, 1] ** 2))),
    "bumps": ("exp(-10*(x1^2 + x2^2)) + 0.5*x3", 3,
              lambda x: np.exp(-10 * (x[:, 0] ** 2 + x[:, 1] ** 2)) + 0.5 * x[:, 2]),
}
"""Regression formulas in the style of pykan's examples: ``name: (formula, variables, function)``. Each data
set ``formula_<name>`` draws 1,000 points uniformly from ``[-1, 1]^variables`` (seed 0), no noise."""


def _formula(key: str) -> Callable[[], Dataset]:
    text, d, fn = FORMULAS[key]

    def load() -> Dataset:
        x = np.random.default_rng(SYNTHETIC_SEED).uniform(-1, 1, (1000, d))
        return _regression(f"formula_{key}", x, fn(x))
    load.__doc__ = f"f = {text} on [-1, 1]^{d}"
    return load


@dataclass(frozen=True)
class DatasetSpec:
    """A data set known by name: how to load it and what it is.

    Attributes:
        load: Builds the :class:`Dataset`.
        rows, features, classes: Its size (a test checks these against the loaded data).
        task: ``"classification"``.
        source: Where it comes from, shown by ``learnact list datasets``.
    """

    load: Callable[[], Dataset]
    rows: int
    features: int
    classes: int
    task: str
    source: str


DATASETS: dict[str, DatasetSpec] = {
    "breast_cancer": DatasetSpec(_breast_cancer, 569, 30, 2, "classification", "scikit-learn (bundled)"),
    "wine": DatasetSpec(_wine, 178, 13, 3, "classification", "scikit-learn (bundled)"),
    "iris": DatasetSpec(_iris, 150, 4, 3, "classification", "scikit-learn (bundled)"),
    "digits": DatasetSpec(_digits, 1797, 64, 10, "classification", "scikit-learn (bundled), 8x8 images"),
    "moons": DatasetSpec(_moons, 500, 2, 2, "classification", "synthetic: make_moons, noise 0.2, seed 0"),
    "circles": DatasetSpec(_circles, 500, 2, 2, "classification",
                           "synthetic: make_circles, noise 0.1, factor 0.5, seed 0"),
    "spirals": DatasetSpec(_spirals, 500, 2, 2, "classification", "synthetic: two spirals, noise 0.2, seed 0"),
    "xor": DatasetSpec(_xor, 500, 2, 2, "classification", "synthetic: sign of x1*x2 on [-1, 1]^2, seed 0"),
    "classification": DatasetSpec(_classification, 1000, 20, 3, "classification",
                                  "synthetic: make_classification, 8 informative, seed 0"),
    "gaussian_quantiles": DatasetSpec(_gaussian_quantiles, 600, 2, 3, "classification",
                                      "synthetic: make_gaussian_quantiles, seed 0"),
    "mnist1d": DatasetSpec(_mnist1d, 5000, 40, 10, "classification",
                           "mnist1d package (generated locally; extra 'suites')"),
    "penguins": DatasetSpec(lambda: _penguins(Preprocessing(one_hot=True, impute="most_frequent")), 344, 7, 3,
                            "classification", "palmerpenguins package (extra 'suites'); text and missing values: "
                            "needs data.one_hot and data.impute"),
    "diabetes": DatasetSpec(_diabetes, 442, 10, 0, "regression", "scikit-learn (bundled)"),
    **{f"formula_{k}": DatasetSpec(_formula(k), 1000, d, 0, "regression",
                                   f"synthetic: f = {text}, x ~ U[-1, 1], seed 0")
       for k, (text, d, _) in FORMULAS.items()},
}
"""Every data set loadable by name; :data:`learnact.names.BUILTIN_DATASETS` lists the same names."""

BUILTIN_DATASETS: dict[str, Callable[[], Dataset]] = {name: spec.load for name, spec in DATASETS.items()}


def _row(position: int, source: object = None, n_rows: int = 0) -> str:
    """Where row ``position`` (0-based, of the data) is: ``data row 4 (line 5 of the file)``; ``data row 4`` where
    the rows have no lines (a built-in data set, a Parquet file).

    The header is line 1 of the file. ``source``: the CSV the ``n_rows`` data rows were read from
    (:data:`DATA_SOURCE`), read again here, for a message only, where blank lines may lie between its rows.
    """
    if not isinstance(source, str):
        return f"data row {position + 1}"
    lines = _data_lines(Path(source), n_rows)
    line = lines[position] if lines is not None and position < len(lines) else position + 2
    return f"data row {position + 1} (line {line} of the file)"


DATA_SOURCE = "csv_source"
"""The key of ``DataFrame.attrs`` where :func:`read_table` puts the CSV's path: pandas skips blank lines, so data
row 3 need not be line 4, and a message naming a row finds its line there (:func:`_data_lines`)."""


def _first_bad(column: pd.Series, bad: np.ndarray) -> str:
    """``column 'b', data row 4 (line 5 of the file): 'oops'`` for the first ``True`` of ``bad``."""
    i = int(np.flatnonzero(bad)[0])
    value = column.iloc[i]
    shown = repr(value) if isinstance(value, str) else str(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"column {str(column.name)!r}, {_row(i, column.attrs.get(DATA_SOURCE), len(column))}: {shown}"


def check_feature_frame(features: pd.DataFrame, where: str, label: pd.Series | None = None, *,
                        one_hot: bool = False, impute: bool = False, kind: str = "feature") -> None:
    """Raise :class:`DataError` if feature columns hold missing values, text or infinities.

    The message names the columns and, for the first of them, the row and the value
    (``data row 4 (line 5 of the file)``: rows count from the first after the header).

    Args:
        features: The feature columns.
        where: How the message names the source (``"CSV 'd.csv'"``).
        label: The label column, checked for missing values too (listed after the features).
        one_hot: Text feature columns are allowed (the study one-hot encodes them).
        impute: Missing feature values are allowed (the study imputes them);
            missing labels never are.
        kind: What the columns hold, as the message names them (``"feature"``, ``"metric"``).
    """
    import pandas as pd

    frame = features if label is None else pd.concat([features, label], axis=1)
    frame.attrs = dict(features.attrs)  # the CSV (concat keeps no attrs): messages name the line of the file
    isna = frame.isna()
    missing = frame.columns[isna.any()].tolist()
    if impute:
        missing = [c for c in missing if label is not None and c == label.name and c not in features.columns]
    if missing:
        first = _first_bad(frame[missing[0]], isna[missing[0]].to_numpy())
        hint = ("" if kind != "feature" or (label is not None and missing == [label.name]) else
                " (or impute them from each training part: data.impute = \"median\" in the study file, or "
                "--impute median)")
        raise DataError(f"{where} has missing values in columns {missing} (first: {first}); fill or drop them "
                        f"first{hint}")
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text and one_hot:
        features = features.drop(columns=text)
        text = []
    if text:
        # UCI-style '?' in a column of numbers: one-hot encoding (the advice for text) would make each number a category
        found = {c: _numeric_except(features[c]) for c in text} if kind == "feature" else {}
        placeholders = {c: v for c, v in found.items() if v is not None}
        column = features[next(iter(placeholders), text[0])]
        as_numbers = pd.to_numeric(column, errors="coerce")
        first = ""
        if as_numbers.isna().any():
            first = f" (first: {_first_bad(column, as_numbers.isna().to_numpy())})"
        one_hot_hint = "(or one-hot encode them: data.one_hot = true in the study file, or --one-hot)"
        if placeholders:
            tokens, bad = placeholders[column.name]
            n_bad, shown = int(bad.sum()), ", ".join(map(repr, tokens))
            fill = ("make those fields empty (the study imputes them)" if impute else
                    "make those fields empty and impute them (data.impute = \"median\" in the study file, or "
                    "--impute median)")
            names = [str(c) for c in placeholders]
            others = [str(c) for c in text if c not in placeholders]
            raise DataError(f"{where} has non-numeric feature columns {text}{first}; "
                            f"column {names[0]!r} is numeric except {shown} in {n_bad} row{'s' * (n_bad > 1)}"
                            f"{f' (columns {names[1:]} hold numbers with placeholders too)' if names[1:] else ''}: "
                            f"if {' or '.join(map(repr, tokens))} {'marks' if len(tokens) == 1 else 'mark'} missing "
                            f"values, {fill}, else correct them"
                            + (f"; encode {others} as numbers {one_hot_hint}" if others else ""))
        raise DataError(f"{where} has non-numeric {kind} columns {text}{first}; encode them as numbers first "
                        f"{one_hot_hint}" if kind == "feature" else
                        f"{where} has non-numeric {kind} columns {text}{first}; encode them as numbers first")
    values = features.to_numpy(np.float64)  # NaN (allowed when imputing) is not infinite
    infinite = np.isinf(values)
    if infinite.any():
        columns = [str(c) for c in features.columns[infinite.any(axis=0)]]
        j = int(np.flatnonzero(infinite.any(axis=0))[0])
        raise DataError(f"{where} has infinite values in columns {columns} (first: "
                        f"{_first_bad(features.iloc[:, j], infinite[:, j])}); replace them with finite numbers "
                        f"or drop those rows")


PLACEHOLDER_TOKENS = 3
"""A text column whose values are numbers apart from at most this many distinct tokens (``?``, ``n/a``, ``-``),
in fewer rows than the numbers, is read as numeric with placeholders (:func:`_numeric_except`)."""


def _numeric_except(column: pd.Series) -> tuple[list[str], np.ndarray] | None:
    """The tokens (in order of first appearance) and the rows ``(n,)`` that keep a column of numbers from being
    numeric, or ``None`` when it is not such a column (see :data:`PLACEHOLDER_TOKENS`)."""
    import pandas as pd

    present = column.notna().to_numpy()
    bad = present & pd.to_numeric(column, errors="coerce").isna().to_numpy()
    tokens = list(dict.fromkeys(str(v) for v in column[bad]))
    if not bad.any() or len(tokens) > PLACEHOLDER_TOKENS or bad.sum() >= present.sum() - bad.sum():
        return None
    return tokens, bad


def scale_limit(n_rows: int) -> float:
    """The largest ``|x|`` a column of ``n_rows`` values can hold and still be standardised in float64: its mean
    and variance (of any subset of its rows) stay finite while ``|x| <= sqrt(max_float64 / (4 n))``."""
    return float(np.sqrt(np.finfo(np.float64).max / (4 * max(n_rows, 1))))


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
    limit = scale_limit(len(values))
    big = np.abs(values) > limit
    if big.any():
        j = int(np.flatnonzero(big.any(axis=0))[0])
        raise DataError(f"{where} has values too large to standardise in column {str(features.columns[j])!r} "
                        f"(first: {_first_bad(features.iloc[:, j], big[:, j])}; the limit for {len(values)} rows "
                        f"is {limit:.3g}); rescale the column (e.g. divide it by a power of 10) or take its log")


TARGET_SCALE_MIN = float(np.sqrt(np.finfo(np.float64).tiny) / np.finfo(np.float64).eps)
"""The smallest standard deviation (``6.7e-139``) regression targets can have and be standardised in float64: from
it up, their squared deviations, and the squared errors of predictions as close as float64 resolves (``eps``
standard deviations), are normal floats; below it they underflow, and the scale and R² come out wrong."""


def target_scaling(y: np.ndarray, where: str) -> tuple[float, float]:
    """The mean and standard deviation that standardise regression targets ``y``: ``(y - mean) / scale``.

    Targets that are all equal get scale 1 (as scikit-learn's ``StandardScaler`` does).

    Args:
        y: Targets, ``(n,)`` float64, finite.
        where: How the message names them (``"target of data set 'd.csv' (training part of seed 1)"``).

    Raises:
        DataError: The mean or the standard deviation is not finite (values
            beyond :func:`scale_limit`; a loaded table is checked against it
            by row); the standard deviation is below :data:`TARGET_SCALE_MIN`;
            or it is float64 rounding of the mean (scikit-learn's test for a
            constant feature: ``sd <= n * eps * |mean|``).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean, scale = float(np.mean(y)), float(np.std(y))
    if not (np.isfinite(mean) and np.isfinite(scale)):
        raise DataError(f"{where} is too large to standardise (its mean or standard deviation overflows float64; "
                        f"largest |y| {float(np.max(np.abs(y))):.3g}, the limit for {len(y)} rows is "
                        f"{scale_limit(len(y)):.3g}); rescale it, e.g. divide it by a power of 10")
    deviations = np.asarray(y, dtype=np.float64) - mean
    spread = float(np.max(np.abs(deviations))) if len(y) else 0.0
    if spread == 0:
        return mean, 1.0
    sd = spread * float(np.sqrt(np.mean((deviations / spread) ** 2)))  # no square of a tiny number: no underflow
    if sd < TARGET_SCALE_MIN:
        raise DataError(f"{where} is too small to standardise (standard deviation {sd:.3g}; the smallest is "
                        f"{TARGET_SCALE_MIN:.3g}, below which float64 squares of its errors underflow); rescale it, "
                        f"e.g. multiply it by a power of 10")
    if sd <= len(y) * np.finfo(np.float64).eps * abs(mean):
        raise DataError(f"{where} is effectively constant (standard deviation {sd:.3g} around mean {mean:.3g}: "
                        f"float64 rounding); nothing to regress: choose another target, or subtract the part its "
                        f"values share in the file")
    return mean, scale


TABLE_SUFFIXES = (".csv", ".parquet")
"""File types a data set can be read from (Parquet needs pyarrow)."""


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file (by suffix) as a data frame; :class:`DataError` when it cannot be read.

    The error names the fix where the cause is common: an empty file, text
    that is not UTF-8, rows with more fields than the header, and two
    columns of the same name (pandas would read them as ``a`` and ``a.1``,
    a silent rename that hid which was meant). Rows that each end in a comma
    (an empty last field) are read as the header names their fields.
    """
    import warnings

    import pandas as pd

    parquet = path.suffix.lower() == ".parquet"
    where = f"{'Parquet file' if parquet else 'CSV'} {str(path)!r}"
    try:
        # index_col=False: rows that all end in one field more than the header (a trailing comma) are read as
        # the header says; by default pandas took their first column for the index and shifted every column
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # values past the header: refused below
            frame = pd.read_parquet(path) if parquet else pd.read_csv(path, index_col=False)
        # the raw header row, where pandas may have renamed a repeated name (a CSV read once already reads again)
        header = ([str(c) for c in pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0]]
                  if not parquet and _renamed_duplicates(frame) else [])
    except ImportError:
        raise DataError(f"reading Parquet file {str(path)!r} needs pyarrow: pip install pyarrow") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{where} is empty; write a header row of column names, then one row per sample") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot read {where}: {' '.join(str(exc).split())}; every row needs as many "
                        "comma-separated fields as the header") from None
    except pd.errors.ParserWarning:
        raise DataError(f"cannot read {where}: its rows have more fields than its header names; every row needs "
                        "as many comma-separated fields as the header (name the extra columns, or drop them)") from None
    except Exception as exc:  # pandas raises many types
        raise DataError(f"cannot read {where}: {' '.join(str(exc).split())}") from None
    dup = next((c for i, c in enumerate(header) if c in header[:i]), None)
    if dup is not None:
        raise DataError(f"{where} has two columns named {dup!r}; rename one")
    if not parquet:
        frame.attrs[DATA_SOURCE] = str(path)
    return frame


def _data_lines(path: Path, n_rows: int) -> list[int] | None:
    """Each data row's line in the CSV ``path`` (1-based, the header is line 1) where blank lines lie between
    them, or ``None`` where the rows follow one another (or the lines cannot be told apart from rows: a quoted
    field across lines)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):  # moved or changed since it was read: the message keeps row + 2
        return None
    physical = text.splitlines()
    if all(line.strip() for line in physical[1:]):
        return None
    lines = [i + 1 for i, line in enumerate(physical) if i > 0 and line.strip()]
    return lines if len(lines) == n_rows else None


def _renamed_duplicates(frame: pd.DataFrame) -> bool:
    """Whether a column name is one pandas gives a repeated header name (``a.1`` beside ``a``)."""
    names = {str(c) for c in frame.columns}
    return any(base in names for base, dot, n in (str(c).rpartition(".") for c in frame.columns)
               if dot and n.isdigit())


def _from_table(name: str, frame: pd.DataFrame, target: str | None, where: str,
                preprocessing: Preprocessing | None, task: str = "classification") -> Dataset:
    """A labelled data set from a table: ``target`` (default: the last column) holds the labels
    (regression: the numeric targets)."""
    prep = preprocessing or Preprocessing()
    if frame.shape[1] < 2:
        sep = next((s for s in (";", "\t", "|") if frame.shape[1] and s in str(frame.columns[0])), None)
        fix = (f"its header looks separated by {sep!r}: save it with commas" if sep
               else "give feature columns and a target column")
        raise DataError(f"{where} has {frame.shape[1]} column(s), needs at least 2; {fix}")
    if len(frame) < 10:
        raise DataError(f"{where} has {len(frame)} data rows, needs at least 10; add rows")
    target = target or str(frame.columns[-1])
    if target not in frame.columns:
        raise DataError(f"target column {target!r} not in {where}; columns: {list(frame.columns)}")
    features = frame.drop(columns=[target])
    check_feature_frame(features, where, label=frame[target], one_hot=prep.one_hot, impute=prep.impute is not None)
    numeric = features.select_dtypes("number") if prep.one_hot else features
    check_scalable(numeric, where)
    if task == "regression":
        import pandas as pd

        values = pd.to_numeric(frame[target], errors="coerce").to_numpy(np.float64)
        if not np.isfinite(values).all():
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            at = _row(i, frame.attrs.get(DATA_SOURCE), len(frame))
            raise DataError(f"target column {target!r} of {where} must hold finite numbers for a regression task "
                            f"(first: {at}: {frame[target].iloc[i]!r}); fix the value or drop the row")
        if np.ptp(values) == 0:
            raise DataError(f"target column {target!r} of {where} is constant; nothing to regress")
        column = pd.DataFrame({target: values})
        column.attrs = dict(frame.attrs)  # the CSV the message finds the row's line in
        check_scalable(column, where)  # the limit of the features: any training part's mean and variance are finite
        target_scaling(values, f"target column {target!r} of {where}")  # each training part is scaled so again
        raw = features.reset_index(drop=True) if prep.active else None
        X = np.empty((len(frame), 0)) if prep.active else features.to_numpy(np.float64)
        return Dataset(name, X, values, tuple(map(str, features.columns)), (), target, raw=raw, task="regression")
    classes, y = np.unique(_class_labels(frame[target], f"target column {target!r} of {where}"), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"target column {target!r} has a single class; need at least 2")
    if prep.active:
        return Dataset(name, np.empty((len(frame), 0)), y.astype(np.int64), tuple(map(str, features.columns)),
                       tuple(map(str, classes)), target, raw=features.reset_index(drop=True))
    return Dataset(name, features.to_numpy(np.float64), y.astype(np.int64),
                   tuple(map(str, features.columns)), tuple(map(str, classes)), target)


def _class_labels(labels: pd.Series, where: str) -> np.ndarray:
    """The class of each row, as text, ``(n,)``: numbers as pandas writes them (``1``, ``0.5``), text without
    surrounding whitespace (``"cat "`` is class ``"cat"``, not a class of its own).

    Raises:
        DataError: An infinite number (it had become a class named ``inf``) or a
            label that is only whitespace; the message names the row.
    """
    import pandas as pd

    source = labels.attrs.get(DATA_SOURCE)
    if pd.api.types.is_numeric_dtype(labels):
        infinite = np.isinf(labels.to_numpy(np.float64))
        if infinite.any():
            i = int(np.flatnonzero(infinite)[0])
            raise DataError(f"{where} has infinite values (first: {_row(i, source, len(labels))}: "
                            f"{labels.iloc[i]}); a class label must be finite: replace them or drop those rows")
        return labels.astype(str).to_numpy()
    text = labels.astype(str).str.strip()
    blank = (text == "").to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise DataError(f"{where} has labels that are only whitespace (first: {_row(i, source, len(labels))}: "
                        f"{labels.iloc[i]!r}); fill them or drop those rows")
    return text.to_numpy()


def _penguins(preprocessing: Preprocessing | None) -> Dataset:
    """Palmer penguins (``palmerpenguins``' bundled CSV): species from bill, flipper, mass, island, sex, year."""
    try:
        from palmerpenguins import load_penguins
    except ImportError:
        raise DataError("data set 'penguins' needs the palmerpenguins package: pip install 'learnact[suites]' "
                        "(or pip install palmerpenguins)") from None
    frame = load_penguins()
    frame = frame[[c for c in frame.columns if c != "species"] + ["species"]]
    return _from_table("penguins", frame, "species", "data set 'penguins'", preprocessing)


def load_dataset(name: str, target: str | None = None, preprocessing: Preprocessing | None = None,
                 task: str | None = None) -> Dataset:
    """Load a data set by name, or a CSV / Parquet file by path.

    Args:
        name: A name of :data:`DATASETS` (``"breast_cancer"``, the paper's
            default; ``learnact list datasets`` shows them all), or a path
            ending in ``.csv`` or ``.parquet``.
        target: Label column of a file (default: the last column).
        preprocessing: Options that allow text and missing feature values
            (encoded per split, :mod:`.preprocess`); without them such
            values are an error that names the option.
        task: ``"regression"`` reads a file's target as numbers; named data
            sets know their own task.

    Raises:
        DataError: Unknown name, unreadable file, text or missing values
            that no option handles; the message names the column and the fix.
    """
    if task is not None and task not in ("classification", "regression"):  # a typo had read the file as classes
        raise DataError(f"task must be 'classification' or 'regression', got task={task!r}")
    if name == "penguins":
        return _penguins(preprocessing)
    if name in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name]()
    path = Path(name)
    if path.suffix.lower() in TABLE_SUFFIXES:
        what = "Parquet file" if path.suffix.lower() == ".parquet" else "CSV"
        if not path.is_file():
            raise DataError(f"{what} file {name!r} does not exist" if what == "CSV" else f"{what} {name!r} does "
                            f"not exist")
        return _from_table(str(path), read_table(path), target, f"{what} {str(path)!r}", preprocessing,
                           task or "classification")
    raise DataError(f"unknown dataset {name!r}; use one of {sorted(BUILTIN_DATASETS)} or a path to a .csv or "
                    f".parquet file")
