"""Batched matrix products that round exactly as a lone model's do (private).

A lone ``nn.Linear`` computes ``addmm(b, x, W^T)`` and autograd its
gradients with ``mm``; BLAS picks kernels by shape (matrix-vector paths for a
single output or input row, blocked paths otherwise), and a batched product
does not always pick the same one, so the last bits can differ. For each
shape, :func:`linear`, :func:`weight_grad_` and :func:`input_grad` try batched
formulations once on random data against the per-member reference operation
and keep the first that agrees bit for bit; if none does, they loop over the
members with the reference operation itself. Operands are first made
contiguous and aligned per member, as fresh lone tensors are.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["aligned_members", "linear", "weight_grad_", "input_grad", "product_choice", "use_member_loop"]

#: Lone tensors are allocated on this boundary (bytes); some kernels round
#: differently when an operand starts elsewhere.
ALIGN_BYTES = 64
_ALIGN = ALIGN_BYTES // 4

_CHOICE: dict[tuple, int] = {}

#: The per-member loop of a product without a batched formulation, in C++ (set by :func:`use_member_loop`).
_MEMBER_LOOP: Callable[[int, Tensor, Tensor, Tensor], Tensor] | None = None


def use_member_loop(loop: Callable[[int, Tensor, Tensor, Tensor], Tensor] | None) -> None:
    """Run the per-member loops (``-1`` formulations) with ``loop(kind, a, b, bias)`` (the native library's
    ``member_products``: the same per-member operations, without Python between them), or in Python (``None``).

    ``kind``: 0 ``F.linear(a[k], b[k], bias[k])``, 1 ``a[k].t().mm(b[k])``, 2 ``a[k].mm(b[k])``; stacked.
    """
    global _MEMBER_LOOP
    _MEMBER_LOOP = loop


def aligned_members(t: Tensor) -> Tensor:
    """``t``, or a copy in which each member's slice is contiguous and starts on an aligned address.

    Shape:
        - t: ``(K, *)``; output: same shape and values
    """
    # contiguous with a member stride that is a whole number of aligned blocks: cheap checks first
    if t.is_contiguous() and not t.data_ptr() % ALIGN_BYTES and not t.stride(0) % _ALIGN \
            and (t.shape[0] > 1 or not t[0].numel() % _ALIGN):
        return t
    K = t.shape[0]
    per = math.prod(t.shape[1:])
    padded = -(-per // _ALIGN) * _ALIGN
    buf = t.new_empty(K, padded)[:, :per]
    buf.copy_(t.reshape(K, per))
    return buf.view(t.shape)


_FORWARD: list[Callable[[Tensor, Tensor, Tensor], Tensor | None]] = [
    lambda x, W, b: torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2)),
    lambda x, W, b: (torch.bmm(W, x.transpose(1, 2)) + b.unsqueeze(2)).transpose(1, 2),
    # one input feature (the neural family's inner layer): BLAS's product is one multiply-add per element
    lambda x, W, b: torch.addcmul(b.unsqueeze(1), x, W.transpose(1, 2)) if x.shape[2] == 1 else None,
]
_WEIGHT: list[Callable[[Tensor, Tensor], Tensor]] = [
    lambda g, x: torch.bmm(g.transpose(1, 2), x, out=g.new_empty(g.shape[0], g.shape[2], x.shape[2])),
    lambda g, x: torch.bmm(x.transpose(1, 2), g).transpose(1, 2),
]
_INPUT: list[Callable[[Tensor, Tensor], Tensor]] = [lambda g, W: torch.bmm(g, W)]


def _choose(key: tuple, candidates: list, reference: Callable[..., Tensor], shapes: list[tuple[int, ...]]) -> int:
    """Index of the first candidate matching ``reference`` per member on random data, or -1 (cached)."""
    gen = torch.Generator().manual_seed(len(_CHOICE) + 1)
    K = 5
    trials = [[aligned_members(torch.randn(K, *s, generator=gen)) for s in shapes] for _ in range(2)]
    expected = [torch.stack([reference(*[a[k].clone() for a in args]) for k in range(K)]) for args in trials]
    choice = -1
    for i, cand in enumerate(candidates):
        got = [cand(*args) for args in trials]  # None: the formulation does not apply to these shapes
        if all(g is not None and torch.equal(g, ref) for g, ref in zip(got, expected, strict=True)):
            choice = i
            break
    _CHOICE[key] = choice
    return choice


#: Per product: its batched formulations, the per-member reference and the operand shapes for ``(b, i, o)``.
_PRODUCTS: dict[str, tuple[list, Callable[..., Tensor], Callable[[int, int, int], list[tuple[int, ...]]]]] = {
    "fwd": (_FORWARD, F.linear, lambda b, i, o: [(b, i), (o, i), (o,)]),
    "wgrad": (_WEIGHT, lambda g, xx: g.t().mm(xx), lambda b, i, o: [(b, o), (b, i)]),
    "xgrad": (_INPUT, torch.mm, lambda b, i, o: [(b, o), (o, i)]),
}


def product_choice(kind: str, b: int, i: int, o: int) -> int:
    """The formulation used for a product of ``kind`` (``"fwd"``, ``"wgrad"``, ``"xgrad"``) on ``(b, i, o)``.

    ``b``: rows of the batch, ``i``: input features, ``o``: output features
    of the ``Linear``; ``-1`` means a loop over members with the reference
    operation.
    """
    key = (kind, b, i, o)
    choice = _CHOICE.get(key)
    if choice is None:
        candidates, reference, shapes = _PRODUCTS[kind]
        choice = _choose(key, candidates, reference, shapes(b, i, o))
    return choice


def linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x @ W^T + b`` for every member, as ``F.linear`` computes it for each.

    Shape:
        - x: ``(K, b, i)``, weight ``(K, o, i)``, bias ``(K, o)``; output ``(K, b, o)``
    """
    x = aligned_members(x)
    weight = aligned_members(weight)
    choice = product_choice("fwd", x.shape[1], x.shape[2], weight.shape[1])
    if choice == 0:
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
    if choice > 0:
        out = _FORWARD[choice](x, weight, bias)
        assert out is not None  # chosen only for shapes it applies to
        return out
    if _MEMBER_LOOP is not None:
        return _MEMBER_LOOP(0, x, weight, bias)
    return torch.stack([F.linear(x[k], weight[k], bias[k]) for k in range(x.shape[0])])


def weight_grad_(grad: Tensor, x: Tensor, out: Tensor) -> None:
    """Write ``grad^T @ x`` per member (a ``Linear``'s weight gradient) into ``out``.

    Shape:
        - grad: ``(K, b, o)``, x: ``(K, b, i)``, out: ``(K, o, i)``
    """
    grad = aligned_members(grad)
    x = aligned_members(x)
    choice = product_choice("wgrad", grad.shape[1], x.shape[2], grad.shape[2])
    if choice == 0 and out.is_contiguous() and not out.data_ptr() % ALIGN_BYTES:
        torch.bmm(grad.transpose(1, 2), x, out=out)
    elif choice >= 0:
        out.copy_(_WEIGHT[choice](grad, x))
    elif _MEMBER_LOOP is not None:
        out.copy_(_MEMBER_LOOP(1, grad, x, _NO_BIAS))
    else:
        out.copy_(torch.stack([grad[k].t().mm(x[k]) for k in range(grad.shape[0])]))


def input_grad(grad: Tensor, weight: Tensor) -> Tensor:
    """``grad @ W`` per member (a ``Linear``'s input gradient).

    Shape:
        - grad: ``(K, b, o)``, weight: ``(K, o, i)``; output ``(K, b, i)``
    """
    grad = aligned_members(grad)
    weight = aligned_members(weight)
    choice = product_choice("xgrad", grad.shape[1], weight.shape[2], grad.shape[2])
    if choice >= 0:
        return torch.bmm(grad, weight)
    if _MEMBER_LOOP is not None:
        return _MEMBER_LOOP(2, grad, weight, _NO_BIAS)
    return torch.stack([grad[k].mm(weight[k]) for k in range(grad.shape[0])])


_NO_BIAS = torch.empty(0)
