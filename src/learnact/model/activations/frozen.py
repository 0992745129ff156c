"""A gated mixture frozen for deployment: fixed weights, or each unit's arg-max candidate."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .candidates import get_candidate
from .gated import CandidateModule, check_dim, mix_candidates, unit_axis

__all__ = ["FrozenMixture"]


class FrozenMixture(CandidateModule):
    """``sum_k w_k phi_k(x)`` with fixed weights (buffers), or a per-unit selection of one candidate.

    Built by :func:`learnact.model.dropin.freeze` from a static
    :class:`~learnact.model.activations.GatedActivation`; nothing is learnable.

    Args:
        candidates: Candidate names, in the weights' order.
        weights: ``(c,)`` (one mixture) or ``(d, c)`` (one per unit/channel).
        dim: The unit axis, as for the gated module (``-1`` or ``1``).
        select: Apply each unit's arg-max candidate instead of the blend
            (ties go to the first candidate).

    Shape:
        - x: as for the gated module; output: same as x
    """

    weights: Tensor
    choice: Tensor

    def __init__(self, candidates: Sequence[str], weights: Tensor, *, dim: int = -1, select: bool = False) -> None:
        super().__init__()
        self.candidates = tuple(candidates)
        if weights.shape[-1] != len(self.candidates) or weights.dim() not in (1, 2):
            raise ValueError(f"weights must be (c,) or (d, c) with c={len(self.candidates)} candidates, "
                             f"got shape {tuple(weights.shape)}")
        self.functions = [get_candidate(n) for n in self.candidates]
        self.dim = check_dim(dim)
        self.select = select
        self.width = weights.shape[0] if weights.dim() == 2 else None
        self.register_buffer("weights", weights.detach().clone())
        self.register_buffer("choice", weights.detach().argmax(-1))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        axis = x.dim() - 1
        if self.width is not None:
            axis = unit_axis(x, self.dim, self.width, f"FrozenMixture(width={self.width}, dim={self.dim})")
        xm = x.movedim(axis, -1) if axis != x.dim() - 1 else x
        if self.select:
            out = self.functions[0](xm)
            for k in range(1, len(self.functions)):
                out = torch.where(self.choice == k, self.functions[k](xm), out)
        else:
            out = mix_candidates(xm, self.weights, self.functions)
        return out.movedim(-1, axis) if axis != x.dim() - 1 else out

    def extra_repr(self) -> str:
        how = "arg-max per unit" if self.select else "blend"
        return f"candidates={list(self.candidates)}, {how}, width={self.width}, dim={self.dim}"
