"""Turn a trained model into the artefacts of its run folder (no disk I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..config import RunConfig
from ..data import Split
from ..evaluation.metrics import METRICS, compute_metrics
from ..evaluation.status import DIVERGED, FINISHED
from ..model import MLP, GatedActivation, count_parameters
from ..store import RunArtifacts
from ..training.loop import FitResult, weights_finite

__all__ = ["TrainedRun", "build_artifacts", "predict_proba", "run_outcome"]


@dataclass
class TrainedRun:
    """What any engine hands over for one run: the model holds the best weights."""

    run: RunConfig
    model: MLP
    fit: FitResult
    split: Split
    peak_memory_mb: float = float("nan")


def predict_proba(model: MLP, X: np.ndarray) -> tuple[np.ndarray, list[torch.Tensor | None]]:
    """Class probabilities and per-layer gate weights for ``X``.

    Returns:
        ``prob`` of shape ``(n,)`` (binary: positive class) or ``(n, k)``, and
        the gate weights per hidden layer as the model produced them.
    """
    model.eval()
    with torch.no_grad():
        logits, gates = model.forward_with_gates(torch.as_tensor(X, dtype=torch.float32))
        if logits.shape[-1] == 1:
            prob = torch.sigmoid(logits).reshape(-1)
        else:
            prob = torch.softmax(logits, dim=-1)
    return prob.double().numpy(), gates


def run_outcome(t: TrainedRun, prob: np.ndarray, gates: list[torch.Tensor | None]) -> tuple[str, int | None,
                                                                                         str | None]:
    """``(status, diverged_epoch, diverged_reason)`` of a trained run.

    A run the trainer stopped on a non-finite loss or weight is diverged at
    that epoch (:attr:`~learnact.training.FitResult.diverged_reason`). A run
    that trained to its stopping rule is checked once more on what it
    hands over: kept weights, test-set gate weights and test predictions; a
    non-finite one there makes it diverged at its last epoch. Both engines
    pass through here, so they record the same outcome.
    """
    fit = t.fit
    if fit.diverged_epoch is not None:
        return DIVERGED, fit.diverged_epoch, fit.diverged_reason
    reason = None
    if not weights_finite(t.model):
        reason = "non-finite kept weights"
    else:
        bad = [str(i) for i, g in enumerate(gates, start=1) if g is not None and not bool(torch.isfinite(g).all())]
        if bad:
            reason = f"non-finite test-set gate weights in layer{'s' if len(bad) > 1 else ''} {', '.join(bad)}"
        elif not np.all(np.isfinite(prob)):
            reason = "non-finite test predictions"
    if reason is None:
        return FINISHED, None, None
    return DIVERGED, fit.epochs_run, reason


def build_artifacts(t: TrainedRun) -> RunArtifacts:
    """Evaluate on the test part and collect every artefact of the run.

    ``metrics.json`` gets ``status`` (``"finished"`` or ``"diverged"``,
    :func:`run_outcome`), ``diverged_epoch`` and ``diverged_reason``. A
    diverged run's test metrics are NaN, whatever its kept weights predict:
    it did not complete its protocol, and every statistic leaves it out
    (:mod:`learnact.evaluation.status`). Nothing here raises on NaN.
    """
    prob, gates = predict_proba(t.model, t.split.X_test)
    status, diverged_epoch, reason = run_outcome(t, prob, gates)
    metrics: dict[str, Any] = (compute_metrics(t.split.y_test, prob) if status == FINISHED
                               else {name: float("nan") for name in METRICS})
    metrics.update(
        n_params=count_parameters(t.model),
        train_time_s=t.fit.train_time_s,
        best_epoch=t.fit.best_epoch,
        epochs_run=t.fit.epochs_run,
        best_val_loss=t.fit.best_val_loss,
        status=status,
        diverged_epoch=diverged_epoch,
        diverged_reason=reason,
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
