"""The training objective: task loss plus the signed gate-entropy term.

``loss = task + lambda * sum_layers H(g_layer)``; ``lambda > 0`` pushes each
layer toward selecting one candidate, ``lambda < 0`` toward blending. For
input-dependent gates ``H`` is the mean entropy over the batch's samples, for
per-neuron gates the mean over units.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model import MLP
from ..model.activations import gate_entropy

__all__ = ["task_loss", "entropy_term", "targets_tensor", "batch_objective"]


def targets_tensor(y: object, n_classes: int) -> Tensor:
    """Targets as the loss expects them: float ``(b, 1)`` (binary), long ``(b,)`` (multi-class) or float
    ``(b,)`` (regression, ``n_classes = 0``)."""
    t = torch.as_tensor(y)
    if n_classes == 0:
        return t.to(torch.float32).reshape(-1)
    return t.to(torch.float32).reshape(-1, 1) if n_classes == 2 else t.to(torch.long).reshape(-1)


def task_loss(logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean binary cross-entropy on ``sigmoid(logits)``, multi-class cross-entropy, or (regression: a float
    target of shape ``(b,)``) the mean squared error of the identity output.

    The binary form is ``BCELoss(sigmoid(z), y)`` as in the paper's backbone
    (sigmoid output unit), which keeps runs bit-comparable with it. Non-finite
    logits (a diverged run) give a NaN loss instead of an error.

    With ``weight`` (per-sample weights, e.g. scikit-learn's
    ``sample_weight``) the loss is the weighted mean
    ``sum_i w_i l_i / sum_i w_i`` (0 when every weight is 0); a row of
    weight 0 then counts as if it were not in the batch.

    Shape:
        - logits: ``(b, 1)`` binary or ``(b, n_classes)``
        - target: ``(b, 1)`` float (binary), ``(b,)`` long or ``(b,)`` float (regression)
        - weight: ``(b,)``, non-negative, or ``None`` (all rows count alike)
        - output: ``()``
    """
    if weight is not None:
        return _weighted_task_loss(logits, target, weight)
    if target.is_floating_point() and target.dim() == 1:  # regression: identity output, mean squared error
        return F.mse_loss(logits.reshape(-1), target)
    if logits.shape[-1] == 1:
        if not bool(torch.isfinite(logits).all()):
            return logits.sum() * float("nan")
        return F.binary_cross_entropy(torch.sigmoid(logits), target)
    return F.cross_entropy(logits, target)


def _weighted_task_loss(logits: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """:func:`task_loss` with per-sample weights: ``sum_i w_i l_i / sum_i w_i``."""
    if target.is_floating_point() and target.dim() == 1:
        per_row = F.mse_loss(logits.reshape(-1), target, reduction="none")
    elif logits.shape[-1] == 1:
        if not bool(torch.isfinite(logits).all()):
            return logits.sum() * float("nan")
        per_row = F.binary_cross_entropy(torch.sigmoid(logits), target, reduction="none").reshape(-1)
    else:
        per_row = F.cross_entropy(logits, target, reduction="none")
    w = weight.to(per_row.dtype).reshape(-1)
    return (w * per_row).sum() / w.sum().clamp_min(torch.finfo(per_row.dtype).tiny)


def entropy_term(gates: Sequence[Tensor | None]) -> Tensor | None:
    """Sum over gated layers of the mean gate entropy, or ``None`` if no layer is gated."""
    total: Tensor | None = None
    for g in gates:
        if g is None:
            continue
        h = gate_entropy(g).mean()
        total = h if total is None else total + h
    return total


def batch_objective(model: MLP, x: Tensor, target: Tensor, entropy_weight: float,
                    weight: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """The training objective of one mini-batch: ``(loss, task, entropy)``, all differentiable.

    ``loss = task + entropy_weight * entropy`` when the model has gated layers
    and the weight is not zero, else ``task``; ``entropy`` is ``None`` without
    gated layers. ``model`` is an :class:`~learnact.model.MLP` (``forward_with_gates``).
    ``weight`` weighs the task loss per sample (:func:`task_loss`).

    Shape:
        - x: ``(b, in_features)``; target, weight: as :func:`task_loss`; outputs: ``()``
    """
    logits, gates = model.forward_with_gates(x)
    task = task_loss(logits, target, weight)
    ent = entropy_term(gates)
    loss = task + entropy_weight * ent if (ent is not None and entropy_weight != 0.0) else task
    return loss, task, ent
