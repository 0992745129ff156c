"""Turn a trained model into the artefacts of its run folder (no disk I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import RunConfig
from ..data import Split
from ..evaluation.metrics import compute_metrics
from ..model import MLP, GatedActivation, count_parameters
from ..model.inference import predict_proba  # moved under model/; re-exported for older imports
from ..store import RunArtifacts
from ..training.loop import FitResult

__all__ = ["TrainedRun", "build_artifacts", "predict_proba"]


@dataclass
class TrainedRun:
    """What any engine hands over for one run: the model holds the best weights."""

    run: RunConfig
    model: MLP
    fit: FitResult
    split: Split
    peak_memory_mb: float = float("nan")


def build_artifacts(t: TrainedRun) -> RunArtifacts:
    """Evaluate on the test part and collect every artefact of the run."""
    prob, gates = predict_proba(t.model, t.split.X_test)
    metrics: dict[str, Any] = compute_metrics(t.split.y_test, prob)
    metrics.update(
        n_params=count_parameters(t.model),
        train_time_s=t.fit.train_time_s,
        best_epoch=t.fit.best_epoch,
        epochs_run=t.fit.epochs_run,
        best_val_loss=t.fit.best_val_loss,
        diverged_epoch=t.fit.diverged_epoch,
        peak_memory_mb=t.peak_memory_mb,
    )
    pred = {"row": t.split.idx_test, "y_true": t.split.y_test}
    if prob.ndim == 1:
        pred["prob"] = prob
    else:
        for k in range(prob.shape[1]):
            pred[f"prob_{k}"] = prob[:, k]
    gate_info: list[dict[str, Any]] = []
    for layer, (act, g) in enumerate(zip(t.model.activations, gates, strict=True), start=1):
        if not isinstance(act, GatedActivation):
            gate_info.append({"layer": layer, "gate": "fixed", "activation": getattr(act, "name", "")})
            continue
        info: dict[str, Any] = {"layer": layer, "gate": act.gate, "candidates": list(act.candidates),
                                "temperature": float(f"{float(act.temperature):.7g}")}
        assert g is not None
        if act.gate == "input":
            for k, name in enumerate(act.candidates):
                pred[f"gate{layer}_{name}"] = g[:, k].double().numpy()
            info["weights"] = None
        else:
            info["weights"] = g.double().tolist()
        gate_info.append(info)
    return RunArtifacts(
        run=t.run,
        metrics=metrics,
        history=[r.to_dict() for r in t.fit.history],
        predictions=pd.DataFrame(pred),
        gates=gate_info,
        state={k: v.detach().contiguous() for k, v in t.model.state_dict().items()},
        preprocessing={
            "scaler": t.split.scaler.to_dict(),
            "dataset": t.run.data.dataset,
            "n_classes": t.split.n_classes,
            "class_names": list(t.split.class_names),
            "split": {"train": t.split.idx_train.tolist(), "val": t.split.idx_val.tolist(),
                      "test": t.split.idx_test.tolist()},
        },
    )
