"""Load a finished run back as a model with its preprocessing, and predict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..config import RunConfig
from ..data import Standardizer
from ..data.sources import check_feature_frame
from ..evaluation.metrics import class_probabilities
from ..exceptions import CheckpointError, DataError
from ..model import MLP
from .artifacts import predict_proba

__all__ = ["LoadedRun", "load_run", "predict_table"]


@dataclass(frozen=True)
class LoadedRun:
    """A trained model ready for inference.

    Attributes:
        config: The run's resolved config.
        model: The backbone with the saved (best) weights, in eval mode.
        scaler: The preprocessing fitted on the run's training part.
        class_names: Label names, index = class id.
    """

    config: RunConfig
    model: MLP
    scaler: Standardizer
    class_names: tuple[str, ...]


def load_run(folder: Path) -> LoadedRun:
    """Rebuild a run's model from ``config.json``, ``preprocessing.json`` and safetensors weights.

    Raises:
        RunStoreError / CheckpointError: Missing or corrupt files, or weights
            that do not fit the configured architecture.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"run folder {str(folder)!r} does not exist")
    cfg = store.read_run_config(folder)
    pre = store.read_preprocessing(folder)
    scaler = Standardizer.from_dict(pre.get("scaler", {}))
    n_classes = int(pre.get("n_classes", 2))
    model = MLP(len(scaler.mean), cfg.backbone.hidden, 1 if n_classes == 2 else n_classes, cfg.activation)
    state = store.load_state(folder)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise CheckpointError(f"weights in {str(folder)!r} do not fit the run's config ({first}); "
                              "the folder is corrupt: delete it and rerun") from None
    model.eval()
    names = tuple(pre.get("class_names") or [str(i) for i in range(n_classes)])
    return LoadedRun(cfg, model, scaler, names)


def predict_table(run: LoadedRun, frame: pd.DataFrame) -> pd.DataFrame:
    """Class probabilities and predicted labels for the rows of ``frame``.

    Feature columns are matched by name when the run knows its feature names
    (extra columns, such as the label, are ignored); otherwise all columns are used.

    Returns:
        A frame with ``prob_<class>`` columns and ``predicted``.
    """
    names = list(run.scaler.feature_names)
    if names:
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise DataError(f"input lacks feature columns {missing[:5]}{' ...' if len(missing) > 5 else ''}; "
                            f"the run was trained on {len(names)} named features")
        X = frame[names]
    else:
        X = frame
    check_feature_frame(X, "input")
    if X.shape[1] != len(run.scaler.mean):
        raise DataError(f"input has {X.shape[1]} feature columns, the run expects {len(run.scaler.mean)}")
    prob, _ = predict_proba(run.model, run.scaler.transform(X.to_numpy(np.float64)))
    P = class_probabilities(prob)
    out = pd.DataFrame({f"prob_{c}": P[:, i] for i, c in enumerate(run.class_names)}, index=frame.index)
    out["predicted"] = [run.class_names[i] for i in P.argmax(axis=1)]
    return out
