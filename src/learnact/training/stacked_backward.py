"""The hand-derived backward pass of :class:`~.stacked.StackedMLP`.

:func:`backward_` turns a :class:`~.stacked.Tape` and the gradient of the
summed loss with respect to the logits into parameter gradients, written
straight into :attr:`StackedMLP.grad` (laid out like the parameters, ready for
the flat optimiser). It performs, member by member, the floating-point
operations autograd performs for a lone :class:`~learnact.model.MLP`, in the
same order: the same kernels for the products (``bmm`` of the transposed
gradient), the same reductions for broadcast weights, the same grouping when
several paths add into one tensor. Each candidate's derivative is the one
registered with it (:func:`~learnact.model.activations.candidate_derivative`:
the very kernel autograd calls), or autograd for a candidate without one. This
replaces a ~60-node autograd graph per
step by a few dozen direct kernel calls, which is most of the per-step latency
of a small stack.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..model.activations import Candidate, Derivative
from ._products import input_grad, weight_grad_
from ._torch_private import softmax_backward, vjp
from .segments import Unit
from .stacked import StackedMLP, Tape, candidate_input

__all__ = ["backward_", "candidate_backward"]


def candidate_backward(fn: Candidate, derivative: Derivative | None, z: Tensor, output: Tensor,
                       grad: Tensor) -> Tensor:
    """Gradient with respect to ``z`` of a candidate's ``output = fn(z)``, given ``grad``.

    The candidate's registered derivative (the kernel autograd calls), or,
    for a candidate without one, autograd on a recomputation of ``fn(z)``.
    May return ``grad`` itself (the identity).

    Shape:
        - z, output, grad: ``(K, *)``; returned: like ``z``
    """
    z = candidate_input(fn, derivative, z)
    if derivative is not None:
        return derivative(grad, z, output)
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        (g_z,) = vjp(fn(leaf), [leaf], grad)
    if g_z is None:  # as torch.autograd.grad refuses an input the output does not use
        raise RuntimeError(f"candidate {fn!r} does not depend on its input")
    return g_z


def _linear_backward_(grad: Tensor, x: Tensor, weight_grad: Tensor, bias_grad: Tensor) -> None:
    """Write a stacked ``Linear``'s weight and bias gradients, as autograd computes a lone one's."""
    weight_grad_(grad, x, weight_grad)
    torch.sum(grad, 1, out=bias_grad)


def _entropy_grad(g: Tensor, lam: Tensor, kind: str) -> Tensor:
    """Gradient of ``lam * mean(gate_entropy(g))`` with respect to ``g``, as autograd derives it.

    ``mean`` (over units or samples) divides the incoming ``lam``; then the
    negation, the sum's broadcast and ``xlogy(g, g)``'s two partial derivatives,
    ``log g`` (where ``g != 0``) and ``g / g``, added in that order.
    """
    top = -(lam.unsqueeze(1) if kind == "layer" else (lam / g.shape[1]).view(-1, 1, 1))
    top = top.expand_as(g)
    return top * torch.special.xlogy(g != 0, g) + top * g / g


def _gated_backward(unit: Unit, record: tuple, grad: Tensor,
                    lam: tuple[Tensor, Tensor | None] | None) -> tuple[Tensor, Tensor | None]:
    """Backward of one segment's gated activation: the gradients of ``z`` and of the layer input (or ``None``).

    The mixture ``w0 f0 + w1 f1 + ...`` is differentiated as autograd does:
    the last term first, each candidate's gradient ``grad * w_k`` sent
    through its own node and added in that order; each weight's gradient is
    ``grad * f_k`` summed over the axes it was broadcast along.
    """
    z, outs, w, g, context, head_hidden = record
    kind = unit.kind
    fns, derivatives = unit.functions, unit.derivatives
    k = len(outs) - 1
    # a fresh tensor even for the identity (its derivative returns the product it is given): safe to add into
    gz = candidate_backward(fns[k], derivatives[k], z, outs[k], grad * w[..., k])
    for k in range(len(outs) - 2, -1, -1):
        gz.add_(candidate_backward(fns[k], derivatives[k], z, outs[k], grad * w[..., k]))
    dims = (1, 2) if kind == "layer" else (1 if kind == "neuron" else 2)
    gg = torch.stack([(grad * v).sum(dims) for v in outs], dim=-1)
    if lam is not None:
        lam_s, on = lam
        total = _entropy_grad(g, lam_s, kind) + gg
        gg = total if on is None else torch.where(on.view(-1, *([1] * (g.dim() - 1))), total, gg)
    gs = softmax_backward(gg, g, -1)
    assert unit.temperature is not None  # a gated unit always has its temperature rows
    if kind != "input":
        torch.div(gs, unit.temperature, out=unit.grads[0])
        return gz, None
    gl = gs / unit.temperature
    _linear_backward_(gl, head_hidden, unit.grads[2], unit.grads[3])
    gh = torch.ops.aten.threshold_backward(input_grad(gl, unit.params[2]), head_hidden, 0)  # the head's ReLU
    _linear_backward_(gh, context, unit.grads[0], unit.grads[1])
    return gz, (input_grad(gh, unit.params[0]) if unit.source == "layer" else None)


def backward_(stack: StackedMLP, tape: Tape, grad_logits: Tensor,
              entropy_weights: Sequence[tuple[Tensor, Tensor | None] | None]) -> None:
    """Write the gradient of the members' summed loss into ``stack.grad``.

    Args:
        stack: The stacked model the tape was recorded on.
        tape: The forward pass's intermediates.
        grad_logits: Gradient of the summed loss with respect to the logits.
        entropy_weights: Per segment, ``None`` (no entropy term) or
            ``(lam, on)``: each member's entropy weight and, if only some
            members have one, the mask of those that do.

    Shape:
        - grad_logits: ``(K, b, out_features)``
    """
    with torch.no_grad():
        W, _, gW, gb = stack.linears[-1]
        _linear_backward_(grad_logits, tape.inputs[-1], gW, gb)
        grad = input_grad(grad_logits, W)
        sizes = stack.sizes_by_segment
        single = len(sizes) == 1
        for layer in range(len(stack.units) - 1, -1, -1):
            parts = [grad] if single else grad.split(sizes)
            gzs = []
            context_grads: list[Tensor | None] = []
            for unit, record, g_out, lam in zip(stack.units[layer], tape.records[layer], parts, entropy_weights,
                                                strict=True):
                if unit.family is not None:
                    gzs.append(unit.family.backward(record[1], g_out, unit.grads))
                    context_grads.append(None)
                elif unit.kind == "fixed":
                    gzs.append(candidate_backward(unit.functions[0], unit.derivatives[0], record[0], record[1][0],
                                                  g_out))
                    context_grads.append(None)
                else:
                    gz, gc = _gated_backward(unit, record, g_out, lam)
                    gzs.append(gz)
                    context_grads.append(gc)
            gz = gzs[0] if single else torch.cat(gzs)
            W, _, gW, gb = stack.linears[layer]
            _linear_backward_(gz, tape.inputs[layer], gW, gb)
            if layer == 0:
                break
            grad = input_grad(gz, W)
            if stack.layer_context[layer]:
                grad = grad + torch.cat([c if c is not None else torch.zeros_like(part)
                                         for c, part in zip(context_grads, grad.split(sizes), strict=True)])
