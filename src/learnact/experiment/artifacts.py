"""Turn a trained model into the artefacts of its run folder (no disk I/O here)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..config import RunConfig
from ..data import Split
from ..evaluation.metrics import compute_metrics, task_metrics
from ..evaluation.status import DIVERGED, FINISHED
from ..model import MLP, GatedActivation, ParametricActivation, count_parameters
from ..model.inference import predict_output, predict_proba  # predict_proba: re-exported for older imports
from ..model.state import tensor_state
from ..store import RunArtifacts
from ..training.cost import StepCost, measure_step_cost, measure_step_costs
from ..training.loop import FitResult, weights_finite
from ..training.objective import targets_tensor

__all__ = ["TrainedRun", "add_costs", "build_artifacts", "cost_key", "layer_record",
           "predict_proba", "run_outcome", "variant_cost"]


@dataclass
class TrainedRun:
    """What any engine hands over for one run: the model holds the best weights."""

    run: RunConfig
    model: MLP
    fit: FitResult
    split: Split
    peak_memory_mb: float = float("nan")
    stacked: bool = False
    """Trained as a member of a stack: ``fit.train_time_s`` is then its share of the stack's wall time."""


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


def _round(value: float) -> float:
    return float(f"{float(value):.7g}")


def layer_record(layer: int, act: torch.nn.Module, gates: torch.Tensor | None) -> dict[str, Any]:
    """The ``gates.json`` record of one hidden layer (1-based ``layer``), by kind of activation.

    Every record has ``layer`` and ``kind``:

    - ``"fixed"``: ``gate: "fixed"``, ``activation`` (the candidate's name);
    - ``"gated"``: ``gate`` (``"layer"``, ``"neuron"`` or ``"input"``),
      ``candidates``, ``temperature`` and the static ``weights`` (``(c,)`` or
      ``(d, c)``; ``None`` for input gates, whose per-sample weights go to
      ``predictions.csv``);
    - ``"family"``: ``gate: None`` (no gate), ``family`` (its registered name),
      ``granularity``, ``params`` (every hyper-parameter, defaults included),
      ``parameters`` (name -> learned values, per-unit ones with the unit
      axis first, 7 significant digits) and ``n_parameters``.
    """
    if isinstance(act, GatedActivation):
        assert gates is not None
        return {"layer": layer, "kind": "gated", "gate": act.gate, "candidates": list(act.candidates),
                "temperature": _round(float(act.temperature)),
                "weights": None if act.gate == "input" else gates.double().tolist()}
    if isinstance(act, ParametricActivation):
        values = {name: torch.as_tensor(p.detach().double()).apply_(_round).tolist()
                  for name, p in act.named_parameters()}
        return {"layer": layer, "kind": "family", "gate": None, "family": act.family,
                "granularity": act.granularity, "params": act.hparams.model_dump(mode="json"),
                "parameters": values, "n_parameters": sum(p.numel() for p in act.parameters())}
    return {"layer": layer, "kind": "fixed", "gate": "fixed", "activation": getattr(act, "name", "")}


_COSTS: dict[str, StepCost] = {}


# Activation fields that are values inside the same computation (a gate's temperature divides its logits
# whatever it is): variants differing only in them run the same operations on the same shapes, so they share a cost.
_VALUE_ONLY_FIELDS = ("temperature", "temperature_end")


def cost_key(t: TrainedRun) -> str:
    """The run's cost identity: what decides the operations and shapes of one training step.

    Runs that differ only by seed (or name) share it, and so do variants that
    differ only by values that enter the same computation: a gate's
    temperature (and its schedule's end), the learning rate, a non-zero weight
    decay or entropy weight (zero is different: the term is left out). They
    share one measurement (:func:`variant_cost`), so the leaderboard gives
    them the same cost instead of the timing noise between two measurements
    of the same step.
    """
    run, split = t.run, t.split
    activation = {k: v for k, v in run.activation.model_dump(mode="json").items() if k not in _VALUE_ONLY_FIELDS}
    return json.dumps({"activation": activation,
                       "backbone": run.backbone.model_dump(mode="json"), "batch": _cost_batch(t),
                       "features": split.n_features, "classes": split.n_classes,
                       "train": [run.train.weight_decay != 0, run.train.entropy_weight != 0,
                                 run.train.weight_decay_activations]}, sort_keys=True)


def _cost_batch(t: TrainedRun) -> int:
    return min(t.run.train.batch_size, len(t.split.X_train))


def _cost_case(t: TrainedRun) -> tuple[MLP, torch.Tensor, torch.Tensor, RunConfig]:
    b = _cost_batch(t)
    x = torch.as_tensor(t.split.X_train[:b], dtype=torch.float32)
    return t.model, x, targets_tensor(t.split.y_train[:b], t.split.n_classes), t.run


def add_costs(built: Sequence[tuple[str, RunArtifacts]], measured_on: Mapping[str, TrainedRun]) -> None:
    """Put each run's variant cost into its artefacts' metrics (built with ``cost=False``).

    Args:
        built: ``(cost_key, artefacts)`` of each run (:func:`cost_key`).
        measured_on: The run each key's cost is measured on, for the keys not measured yet in this process.
            They are measured together (:func:`~learnact.training.cost.measure_step_costs`: the variants'
            step latencies timed in alternating rounds, so load from elsewhere falls on all of them alike);
            engines call this once training is over, so no timing overlaps training.
    """
    todo = {key: _cost_case(t) for key, t in measured_on.items() if key not in _COSTS}
    if todo:
        _COSTS.update(measure_step_costs({key: (model, x, y, run.train) for key, (model, x, y, run) in todo.items()}))
    for key, art in built:
        art.metrics.update(_COSTS[key].metrics())


def variant_cost(t: TrainedRun) -> StepCost:
    """What one training step of the run's variant costs alone (:func:`~learnact.training.cost.measure_step_cost`).

    Measured once per variant and process (:func:`add_costs` measures
    several at once), on the first ``batch_size`` training rows of
    the run's split: runs that differ only by seed (or name) share the model
    shapes, batch and objective, so they share the measurement.
    """
    key = cost_key(t)
    if key not in _COSTS:
        model, x, y, run = _cost_case(t)
        _COSTS[key] = measure_step_cost(model, x, y, run.train)
    return _COSTS[key]


def build_artifacts(t: TrainedRun, *, cost: bool = True) -> RunArtifacts:
    """Evaluate on the test part and collect every artefact of the run.

    ``metrics.json`` gets ``status`` (``"finished"`` or ``"diverged"``,
    :func:`run_outcome`), ``diverged_epoch`` and ``diverged_reason``. A
    diverged run's test metrics are NaN, whatever its kept weights predict:
    it did not complete its protocol, and every statistic leaves it out
    (:mod:`learnact.evaluation.status`). Nothing here raises on NaN.
    It also gets the test metrics, the training record and the cost
    of the variant trained alone (:func:`variant_cost`: ``flops_per_sample``,
    ``step_latency_ms``, ``activation_bytes_per_sample``); ``stack_time_s``
    is a stacked run's share of its stack's wall time (NaN for a run trained
    alone), which ``train_time_s`` also holds for it. With ``cost=False`` the
    cost keys are left out, for the caller to add once training is over
    (:func:`add_costs`).
    """
    task = t.split.task
    prob, gates = predict_output(t.model, t.split.X_test, task)
    status, diverged_epoch, reason = run_outcome(t, prob, gates)
    if task == "regression":  # scored on the targets' own scale
        y_true, prob = t.split.targets(t.split.y_test), t.split.targets(prob)
    else:
        y_true = t.split.y_test
    metrics: dict[str, Any] = (compute_metrics(y_true, prob, task) if status == FINISHED
                               else {name: float("nan") for name in task_metrics(task)})
    metrics.update(
        n_params=count_parameters(t.model),
        train_time_s=t.fit.train_time_s,
        stack_time_s=t.fit.train_time_s if t.stacked else float("nan"),
        best_epoch=t.fit.best_epoch,
        epochs_run=t.fit.epochs_run,
        best_val_loss=t.fit.best_val_loss,
        status=status,
        diverged_epoch=diverged_epoch,
        diverged_reason=reason,
        peak_memory_mb=t.peak_memory_mb,
    )
    if cost:
        metrics.update(variant_cost(t).metrics())
    pred = {"row": t.split.idx_test, "y_true": y_true}
    if task == "regression":
        pred["y_pred"] = prob
    elif prob.ndim == 1:
        pred["prob"] = prob
    else:
        for k in range(prob.shape[1]):
            pred[f"prob_{k}"] = prob[:, k]
    gate_info: list[dict[str, Any]] = []
    for layer, (act, g) in enumerate(zip(t.model.activations, gates, strict=True), start=1):
        if isinstance(act, GatedActivation) and act.gate == "input":
            assert g is not None
            for k, name in enumerate(act.candidates):
                pred[f"gate{layer}_{name}"] = g[:, k].double().cpu().numpy()
        gate_info.append(layer_record(layer, act, g))
    return RunArtifacts(
        run=t.run,
        metrics=metrics,
        history=[r.to_dict() for r in t.fit.history],
        predictions=pd.DataFrame(pred),
        gates=gate_info,
        state={k: v.detach().cpu().contiguous() for k, v in tensor_state(t.model).items()},
        preprocessing={
            "scaler": t.split.scaler.to_dict(),
            "dataset": t.run.data.dataset,
            **({"task": "regression", "target": {"mean": t.split.target_mean, "scale": t.split.target_scale}}
               if task == "regression" else {"n_classes": t.split.n_classes,
                                             "class_names": list(t.split.class_names)}),
            "split": {"train": t.split.idx_train.tolist(), "val": t.split.idx_val.tolist(),
                      "test": t.split.idx_test.tolist()},
            **({"encoder": t.split.encoder.to_dict()} if t.split.encoder is not None else {}),
        },
    )
