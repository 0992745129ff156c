"""Per-seed splits and the standard scaler fitted on the training part only."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import CheckpointError, DataError
from .preprocess import Encoder, Preprocessing
from .sources import Dataset, target_scaling

__all__ = ["Standardizer", "Split", "split_dataset", "check_splits", "split_sizes"]


@dataclass(frozen=True)
class Standardizer:
    """Per-feature ``(x - mean) / scale`` (scikit-learn's StandardScaler maths).

    Shape:
        - mean, scale: ``(d,)``
    """

    mean: np.ndarray
    scale: np.ndarray
    feature_names: tuple[str, ...] = ()

    @classmethod
    def fit(cls, X: np.ndarray, feature_names: tuple[str, ...] = ()) -> Standardizer:
        """Fit on ``X`` of shape ``(n, d)``; zero-variance features get scale 1."""
        from sklearn.preprocessing import StandardScaler

        sk = StandardScaler().fit(X)
        return cls(np.asarray(sk.mean_, dtype=np.float64), np.asarray(sk.scale_, dtype=np.float64),
                   tuple(feature_names))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise ``X`` of shape ``(n, d)``."""
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected X of shape (n, {self.mean.shape[0]}), got {X.shape}")
        return (X - self.mean) / self.scale

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "standard", "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "feature_names": list(self.feature_names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            CheckpointError: Missing or malformed fields, a mean that is not
                finite, a scale that is not finite and > 0, or feature names
                that do not match the number of features (each names the feature).
        """
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            scale = np.asarray(d["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"preprocessing JSON is malformed ({exc}); rerun the study to rewrite it") from None
        if mean.shape != scale.shape or mean.ndim != 1:
            raise CheckpointError("preprocessing JSON is malformed (mean/scale shapes differ); rerun the study")
        names = d.get("feature_names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or (
                names and (len(names) != len(mean) or len(set(names)) != len(names))):
            raise CheckpointError(f"preprocessing JSON is malformed (feature_names are not {len(mean)} distinct "
                                  "strings); rerun the study to rewrite it")

        def label(j: int) -> str:
            return repr(names[j]) if names else f"#{j}"

        bad_mean = np.flatnonzero(~np.isfinite(mean))
        if bad_mean.size:
            j = int(bad_mean[0])
            raise CheckpointError(f"preprocessing JSON is unusable: the mean of feature {label(j)} is {mean[j]}; "
                                  "rerun the study to rewrite it")
        bad_scale = np.flatnonzero(~(np.isfinite(scale) & (scale > 0)))
        if bad_scale.size:
            j = int(bad_scale[0])
            raise CheckpointError(f"preprocessing JSON is unusable: the scale of feature {label(j)} is {scale[j]} "
                                  "(must be finite and > 0); rerun the study to rewrite it")
        return cls(mean, scale, tuple(names))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Standardizer:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read preprocessing {str(path)!r}: {exc}") from None


@dataclass(frozen=True)
class Split:
    """One seed's standardised train / validation / test parts (float32).

    ``idx_*`` are row indices into the original data set. A regression
    split holds standardised targets (``(y - target_mean) / target_scale``,
    fitted on the rows the feature scaler is fitted on; :meth:`targets`
    undoes it). ``encoder`` is the
    imputation / one-hot step fitted on the training part (``None`` when the
    study preprocesses nothing); ``scaler`` then works on its output columns.

    Shape:
        - X_*: ``(n_part, d)``; y_*: ``(n_part,)`` integer labels
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    idx_train: np.ndarray
    idx_val: np.ndarray
    idx_test: np.ndarray
    scaler: Standardizer
    n_classes: int
    class_names: tuple[str, ...] = ()
    encoder: Encoder | None = None
    task: str = "classification"
    target_mean: float = 0.0
    target_scale: float = 1.0

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Width of the model's output layer: 1 (binary or regression) or the number of classes."""
        return 1 if self.n_classes <= 2 else self.n_classes

    def targets(self, y_scaled: np.ndarray) -> np.ndarray:
        """Regression targets (or predictions) back on the data's own scale: ``y * target_scale + target_mean``."""
        return np.asarray(y_scaled, dtype=np.float64) * self.target_scale + self.target_mean


def split_dataset(ds: Dataset, seed: int, test_size: float = 0.25, val_size: float = 0.2,
                  options: Preprocessing | None = None) -> Split:
    """The protocol's split for one seed.

    Stratified train/test split (``random_state=seed``); a scaler fitted on
    the training part alone and applied to both; then a stratified
    train/validation split of the scaled training part (same seed). A data
    set with raw columns (``ds.raw``) is first encoded by an
    :class:`~learnact.data.preprocess.Encoder` fitted on the same training
    part with ``options``.
    """
    from sklearn.model_selection import train_test_split  # here: importing this module needs no scikit-learn

    idx = np.arange(len(ds.y))
    encoder = None
    X, names = ds.X, ds.feature_names
    if ds.raw is not None:  # preprocessing: fitted on the training part (the split depends on y and seed only)
        if options is None:
            raise ValueError(f"data set {ds.name!r} holds raw columns; pass the study's preprocessing options")
        i_first = train_test_split(idx, test_size=test_size, random_state=seed,
                                   stratify=ds.y if ds.task == "classification" else None)[0]
        encoder = Encoder.fit(ds.raw.iloc[i_first], options)
        X, names = encoder.transform(ds.raw, f"data set {ds.name!r}"), encoder.output_names
    strata = ds.y if ds.task == "classification" else None
    X_tr, X_te, y_tr, y_te, i_tr, i_te = train_test_split(
        X, ds.y, idx, test_size=test_size, random_state=seed, stratify=strata)
    scaler = Standardizer.fit(X_tr, names)
    X_tr = scaler.transform(X_tr)
    X_te = scaler.transform(X_te)
    if ds.task == "regression":  # targets standardised on the same training part as the features
        mean, scale = target_scaling(y_tr, f"the target of data set {ds.name!r} (training part of seed {seed})")
        y_tr, y_te = (y_tr - mean) / scale, (y_te - mean) / scale
    X_tr, X_va, y_tr, y_va, i_tr, i_va = train_test_split(
        X_tr, y_tr, i_tr, test_size=val_size, random_state=seed,
        stratify=y_tr if ds.task == "classification" else None)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    if ds.task == "regression":
        return Split(f32(X_tr), y_tr, f32(X_va), y_va, f32(X_te), y_te, i_tr, i_va, i_te, scaler, 0, (), encoder,
                     "regression", mean, scale)
    return Split(f32(X_tr), y_tr, f32(X_va), y_va, f32(X_te), y_te, i_tr, i_va, i_te, scaler, ds.n_classes,
                 ds.class_names, encoder)


def split_sizes(n_rows: int, test_size: float, val_size: float) -> tuple[int, int, int]:
    """Rows of the training, validation and test parts, as :func:`split_dataset` makes them.

    scikit-learn's rule: the test part takes ``ceil(test_size * n)`` rows and
    the validation part ``ceil(val_size * n_rest)`` of the rest.

    Returns:
        ``(n_train, n_val, n_test)``; they add up to ``n_rows``.
    """
    n_test = math.ceil(test_size * n_rows)
    n_rest = n_rows - n_test
    n_val = math.ceil(val_size * n_rest)
    return n_rest - n_val, n_val, n_test


def _rows(n: int, word: str = "row") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def check_splits(ds: Dataset, test_size: float, val_size: float, seed: int = 0,
                 options: Preprocessing | None = None) -> None:
    """Raise :class:`DataError` if :func:`split_dataset` cannot split ``ds`` with these sizes, for any seed.

    Checked without training anything, so a study fails before it writes: each
    part must keep at least one row per class (stratified splits), and every
    class needs 2 rows in the first split and 2 in the part the validation
    split divides, so no class is missing from training (scikit-learn gives
    class ``k`` of ``c_k`` rows at least ``floor(c_k * n_part / n)`` of a part
    of ``n_part`` rows, whatever the seed).
    Messages name the fields of a study file (``data.test_size``,
    ``data.val_size``) and the class. Finally ``seed``'s split is made, so
    anything these rules miss is reported here too, in the same terms.
    """
    n = len(ds.y)
    n_train, n_val, n_test = split_sizes(n, test_size, val_size)
    if ds.task == "regression":
        small = [(part, rows) for part, rows in (("training", n_train), ("validation", n_val), ("test", n_test))
                 if rows < 2]
        if small:
            part, rows = small[0]
            raise DataError(f"data set {ds.name!r} ({n} rows) leaves {_rows(rows)} for the {part} part with "
                            f"data.test_size = {test_size:g} and data.val_size = {val_size:g}; each part needs at "
                            f"least 2 rows: change the sizes or collect more rows")
        split_dataset(ds, seed, test_size, val_size, options)  # a training part's targets too small to scale
        return
    try:
        _check_class_splits(ds, test_size, val_size, seed, options)
    except DataError:
        values = _numeric_classes(ds)
        if ds.target and values >= 20 and (values > 100 or values > n / 2):  # a continuous target read as classes
            raise DataError(f"target {ds.target!r} of data set {ds.name!r} has {values} distinct numeric values, too "
                            f"many to be classes; for a regression task pass --task regression (data.task = "
                            f'"regression" in a study file)') from None
        raise


def _numeric_classes(ds: Dataset) -> int:
    """The number of classes if every class name is a finite number (a target that may be continuous), else 0."""
    try:
        return ds.n_classes if all(math.isfinite(float(c)) for c in ds.class_names) else 0
    except ValueError:
        return 0


def _check_class_splits(ds: Dataset, test_size: float, val_size: float, seed: int,
                        options: Preprocessing | None) -> None:
    """:func:`check_splits` for a classification task."""
    n, k = len(ds.y), ds.n_classes
    n_train, n_val, n_test = split_sizes(n, test_size, val_size)
    n_rest = n_train + n_val
    what = f"data set {ds.name!r} ({n} rows, {k} classes)"
    if n_rest < k or n_test < k:
        part, rows = ("test", n_test) if n_test < k else ("training", n_rest)
        raise DataError(f"data.test_size = {test_size:g} leaves {_rows(rows)} of {what} for the {part} part, which "
                        f"needs at least one row per class ({k}); "
                        f"{'raise' if part == 'test' else 'lower'} data.test_size")
    counts = [int(c) for c in np.bincount(ds.y, minlength=k)]
    need = max(2, math.ceil(2 * n / n_rest))  # floor(c * n_rest / n) >= 2
    while math.floor(need * n_rest / n) < 2:  # pragma: no cover - guards the float rounding of the line above
        need += 1
    thin = [j for j in range(k) if counts[j] < need]
    if thin:
        j = min(thin, key=lambda j: counts[j])
        name = ds.class_names[j] if j < len(ds.class_names) else str(j)
        listed = ", ".join(f"{ds.class_names[i]!r} ({counts[i]})" for i in thin[:5]) + " ..." * (len(thin) > 5)
        reason = ("a stratified split needs at least 2 rows of every class" if need == 2 else
                  f"with data.test_size = {test_size:g} the validation split (data.val_size) needs every class to "
                  f"keep at least 2 of the {n_rest} non-test rows, so a class needs at least {need} rows (or lower "
                  f"data.test_size)")
        column = f"target column {ds.target!r}" if ds.target else "labels"
        raise DataError(f"class {name!r} ({column}) of {what} has {_rows(counts[j])}, too few to split: "
                        f"{reason}; classes with too few rows: {listed}; drop or merge them, or collect more rows")
    if n_train < k or n_val < k:
        part, rows = ("validation", n_val) if n_val < k else ("training", n_train)
        raise DataError(f"data.val_size = {val_size:g} leaves {rows} of the {_rows(n_rest, 'non-test row')} of "
                        f"{what} for the {part} part, which needs at least one row per class ({k}); "
                        f"{'raise' if part == 'validation' else 'lower'} data.val_size")
    try:
        split_dataset(ds, seed, test_size, val_size, options)
    except ValueError as exc:
        raise DataError(f"cannot split {what} with data.test_size = {test_size:g} and data.val_size = "
                        f"{val_size:g}: {' '.join(str(exc).split())}") from None
