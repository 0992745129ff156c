"""A single fixed activation as a module."""

from __future__ import annotations

from torch import Tensor, nn

from .candidates import get_candidate

__all__ = ["FixedActivation"]


class FixedActivation(nn.Module):
    """Applies one registered candidate, e.g. ``FixedActivation("tanh")``.

    Shape:
        - x: ``(*)``
        - output: ``(*)``
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.fn = get_candidate(name)
        self.name = name

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return repr(self.name)
