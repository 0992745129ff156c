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

    def __getstate__(self) -> dict[str, object]:
        """Pickle and deep-copy by candidate name, as the gated modules do: the function is re-resolved from the
        registry (a candidate registered as a lambda cannot be pickled itself)."""
        state = self.__dict__.copy()
        state.pop("fn", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)
        self.fn = get_candidate(self.name)

    def extra_repr(self) -> str:
        return repr(self.name)
