"""Each member's task loss, and its gradient with respect to the logits, for a stack.

The same loss :func:`~.objective.task_loss` gives one model (mean BCE on
``sigmoid(logits)``, or cross-entropy), per member; the binary gradient is
derived by hand in the order autograd derives it for one model, and the
multi-class loss is the reference's own ``cross_entropy`` call on each member's
rows, so reference mode stays bit-identical. A member with a non-finite logit (a diverged run)
gets a NaN loss and NaN gradients, as the reference trainer's does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .stacked import member_rows

__all__ = ["loss_gradient", "member_task_loss", "task_and_gradient"]


_ONES: dict[tuple, Tensor] = {}


def loss_gradient(prob: Tensor, target: Tensor) -> Tensor:
    """Gradient of each member's mean BCE on ``prob = sigmoid(logits)`` with respect to the logits.

    As autograd computes it for ``binary_cross_entropy(sigmoid(z), y)``:
    ``(p - y) / max((1 - p) p, eps)``, divided by the batch size, then the
    sigmoid's backward.

    Shape:
        - prob, target: ``(K, b, 1)``; returned: ``(K, b, 1)``
    """
    ones = _ONES.get(prob.shape)
    if ones is None:
        ones = _ONES.setdefault(prob.shape, torch.ones((), dtype=prob.dtype).expand(prob.shape))
    g = torch.ops.aten.binary_cross_entropy_backward(ones, prob, target, None, 0)
    g.div_(prob.shape[1] * prob.shape[2])
    return torch.ops.aten.sigmoid_backward(g, prob)


def _binary_probabilities(logits: Tensor) -> tuple[Tensor, Tensor | None]:
    """``sigmoid(logits)`` per member, and the mask of members with a non-finite logit (or ``None``).

    The reference loss is NaN for a batch with a non-finite logit (a diverged
    run) instead of an error; such members get harmless probabilities here and
    their loss is set to NaN afterwards.
    """
    prob = torch.sigmoid(member_rows(logits))
    if bool(torch.isfinite(logits).all()):
        return prob, None
    bad = ~torch.isfinite(logits).all(dim=2).all(dim=1)
    return torch.where(bad.view(-1, 1, 1), 0.5, prob), bad


def member_task_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Each member's task loss, as :func:`~.objective.task_loss` computes it for one model.

    Shape:
        - logits: ``(K, b, 1)`` (binary) or ``(K, b, n_classes)``
        - target: ``(K, b, 1)`` float (binary), ``(K, b)`` long, or ``(K, b)`` float (regression)
        - output: ``(K,)``
    """
    if target.is_floating_point() and target.dim() == 2:  # regression: (K, b) targets
        return F.mse_loss(logits.squeeze(-1), target, reduction="none").mean(dim=1)
    if logits.shape[-1] == 1:
        prob, bad = _binary_probabilities(logits)
        task = F.binary_cross_entropy(prob, target, reduction="none").mean(dim=(1, 2))
        return task if bad is None else task.masked_fill(bad, math.nan)
    # One call per member: the mean reduction of ``cross_entropy`` (``nll_loss``'s cascade sum) adds in
    # another order than a mean over the rows of ``reduction="none"``, so only the reference's own call on
    # each member's ``(b, n_classes)`` slice gives its loss bit for bit (the gradient is the same either way).
    return torch.stack([F.cross_entropy(z, y) for z, y in zip(logits.unbind(0), target.unbind(0), strict=True)])


def task_and_gradient(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Each member's task loss and the gradient of their sum with respect to the logits.

    A member with a non-finite logit gets a NaN loss and NaN gradients, as
    the reference trainer's ``logits.sum() * nan`` gives it.

    Shape:
        - logits: ``(K, b, o)``; outputs ``(K,)`` and ``(K, b, o)``
    """
    if logits.shape[-1] == 1 and target.dim() == 3:
        prob, bad = _binary_probabilities(logits)
        task = F.binary_cross_entropy(prob, target, reduction="none").mean(dim=(1, 2))
        grad = loss_gradient(prob, target)
        if bad is not None:
            task = task.masked_fill(bad, math.nan)
            grad = grad.masked_fill(bad.view(-1, 1, 1), math.nan)
        return task, grad
    with torch.enable_grad():
        leaf = logits.detach().requires_grad_(True)
        task = member_task_loss(leaf, target)
        (grad,) = torch.autograd.grad(task.sum(), leaf)
    return task.detach(), grad
