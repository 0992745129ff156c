"""Load a finished run back as a model with its preprocessing, and predict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import store
from ..config import RunConfig
from ..data import Encoder, Standardizer
from ..data.sources import check_feature_frame
from ..evaluation.metrics import class_probabilities
from ..exceptions import CheckpointError, DataError
from ..model import MLP
from ..model.inference import predict_output, predict_proba

__all__ = ["LoadedRun", "load_run", "predict_table"]


@dataclass(frozen=True)
class LoadedRun:
    """A trained model ready for inference.

    Attributes:
        config: The run's resolved config.
        model: The backbone with the saved (best) weights, in eval mode.
        scaler: The preprocessing fitted on the run's training part.
        class_names: Label names, index = class id.
        encoder: The imputation / one-hot step fitted on the training part,
            when the study used one (raw input columns go through it first).
        target: A regression run's target scaling ``(mean, scale)``; ``None`` for classification.
    """

    config: RunConfig
    model: MLP
    scaler: Standardizer
    class_names: tuple[str, ...]
    encoder: Encoder | None = None
    target: tuple[float, float] | None = None


def load_run(folder: Path) -> LoadedRun:
    """Rebuild a run's model from ``config.json``, ``preprocessing.json`` and safetensors weights.

    Every file is first checked against the run's manifest
    (:func:`learnact.store.verify_run`); then the values: a finite mean and a
    finite, positive scale per feature, finite weights that fit the
    configured architecture, and one class name per output class.

    Raises:
        RunStoreError / CheckpointError: Missing, edited or corrupt files, or
            unusable values; the message names the file and the fix.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"run folder {str(folder)!r} does not exist")
    store.verify_run(folder)
    cfg = store.read_run_config(folder)
    pre = store.read_preprocessing(folder)
    pre_path = folder / "preprocessing.json"
    try:
        scaler = Standardizer.from_dict(pre.get("scaler", {}))
        encoder = Encoder.from_dict(pre["encoder"]) if "encoder" in pre else None
    except CheckpointError as exc:
        raise CheckpointError(f"{pre_path}: {exc}") from None
    if encoder is not None and encoder.output_names != scaler.feature_names:
        raise CheckpointError(f"{pre_path}: the encoder's {len(encoder.output_names)} output columns do not match "
                              f"the scaler's {len(scaler.feature_names)} features; the run folder is corrupt: "
                              f"retrain it")
    n_classes = int(pre.get("n_classes", 2))
    model = MLP(len(scaler.mean), cfg.backbone.hidden, 1 if n_classes == 2 else n_classes, cfg.activation)
    state = store.load_state(folder)
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            why = ("the run diverged" if store.is_diverged(store.read_metrics(folder))
                   else "the weights are unusable")
            raise CheckpointError(f"{folder / 'weights.safetensors'}: tensor {name!r} holds NaN or infinite values "
                                  f"({why}); retrain the run with other settings before predicting with it")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise CheckpointError(f"weights in {str(folder)!r} do not fit the run's config ({first}); "
                              "the folder is corrupt: delete it and rerun") from None
    model.eval()
    if pre.get("task") == "regression":
        return LoadedRun(cfg, model, scaler, (), encoder, (float(pre["target"]["mean"]), float(pre["target"]["scale"])))
    names = tuple(pre.get("class_names") or [str(i) for i in range(n_classes)])
    width = model.head.out_features
    if len(names) != (2 if width == 1 else width):
        n_out = 2 if width == 1 else width
        raise CheckpointError(f"{pre_path}: {len(names)} class names {list(names)[:5]} but the weights' output "
                              f"layer gives {n_out} classes; the run folder is corrupt: retrain it")
    return LoadedRun(cfg, model, scaler, names, encoder)


_FAR_SD = 10.0
"""Training standard deviations between the median input value and the training mean beyond which
:func:`predict_table` refuses a column as not the feature the run was trained on."""


def _check_feature_scales(run: LoadedRun, X: np.ndarray, names: list[str]) -> None:
    """Refuse columns whose median lies more than :data:`_FAR_SD` training SDs from the training mean.

    Within one distribution ``|median - mean| <= sd``, so such a column is another
    feature (swapped or renamed headers) or in other units. Swaps of columns on
    similar scales cannot be told apart from data and pass.
    """
    if X.shape[0] == 0:
        return
    mean, scale = run.scaler.mean, run.scaler.scale
    med = np.median(X, axis=0)
    z = np.abs((med - mean) / scale)
    far = [int(j) for j in np.flatnonzero(z > _FAR_SD)]
    if not far:
        return
    def label(j: int) -> str:
        return repr(names[j]) if names else f"#{j + 1}"

    for i in far:  # a partner whose values fit column i's training data, and the other way round
        fit = np.maximum(np.abs(med - mean[i]) / scale[i], np.abs(med[i] - mean) / scale)
        fit[i] = np.inf
        j = int(np.argmin(fit))
        if fit[j] <= _FAR_SD:
            a, b = sorted((i, j))
            raise DataError(f"input columns {label(a)} and {label(b)} look swapped: each holds values on the "
                            f"scale the run learned for the other; fix the column names and rerun")
    cols = ", ".join(f"{label(j)} ({z[j]:.0f} SD)" for j in far[:5])
    raise DataError(f"input columns {cols} lie far from the run's training data (median that many training "
                    f"standard deviations from the training mean); check they are the features the run was trained "
                    f"on, named correctly and in the same units")


def predict_table(run: LoadedRun, frame: pd.DataFrame) -> pd.DataFrame:
    """Class probabilities and predicted labels for the rows of ``frame`` (regression: predicted values).

    Feature columns are matched by name when the run knows its feature names
    (extra columns, such as the label, are ignored); otherwise all columns are
    used. A column whose values lie far outside the training data (another
    feature under this name, swapped headers, other units) is refused.

    Returns:
        A frame with ``prob_<class>`` columns and ``predicted`` (regression: ``predicted`` only).

    Raises:
        DataError: Missing (or renamed) feature columns, text or missing values,
            a wrong number of columns, or columns on the wrong scale; the
            message names the columns.
    """
    if run.encoder is not None:  # raw columns (text, missing values): encode as in training, then scale
        encoded = run.encoder.transform(frame)
        frame = pd.DataFrame(encoded, columns=list(run.encoder.output_names), index=frame.index)
    names = list(run.scaler.feature_names)
    if names:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            extra = [str(c) for c in frame.columns if c not in names]
            sep = next((s for s in (";", "\t", "|") if len(frame.columns) == 1 and s in str(frame.columns[0])), None)
            if sep is not None:
                raise DataError(f"input has one column, {str(frame.columns[0])[:60]!r}: its header looks separated "
                                f"by {sep!r}; save it with commas")
            raise DataError(f"input lacks feature columns {missing[:5]}{' ...' if len(missing) > 5 else ''}"
                            + (f" and has columns the run does not know {extra[:5]}{' ...' if len(extra) > 5 else ''}"
                               f" (renamed?)" if extra else "")
                            + f"; the run was trained on {len(names)} named features")
        X = frame[names]
    else:
        X = frame
    check_feature_frame(X, "input")
    if X.shape[1] != len(run.scaler.mean):
        raise DataError(f"input has {X.shape[1]} feature columns, the run expects {len(run.scaler.mean)}")
    values = X.to_numpy(np.float64)
    if not np.all(np.isfinite(values)):
        bad = [str(c) for c, ok in zip(X.columns, np.isfinite(values).all(axis=0), strict=True) if not ok]
        raise DataError(f"input has infinite values in columns {bad[:5]}; fix or drop those rows first")
    _check_feature_scales(run, values, [str(c) for c in X.columns] if names else [])
    if run.target is not None:  # regression: the predicted value on the targets' own scale
        out, _ = predict_output(run.model, run.scaler.transform(values), "regression")
        mean, scale = run.target
        return pd.DataFrame({"predicted": out * scale + mean}, index=frame.index)
    prob, _ = predict_proba(run.model, run.scaler.transform(values))
    P = class_probabilities(prob)
    out = pd.DataFrame({f"prob_{c}": P[:, i] for i, c in enumerate(run.class_names)}, index=frame.index)
    out["predicted"] = [run.class_names[i] for i in P.argmax(axis=1)]
    return out
