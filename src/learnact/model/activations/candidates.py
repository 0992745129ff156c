"""Candidate activation functions and their registry.

A candidate is a pure ``Tensor -> Tensor`` elementwise function. It is written
once here and serves every engine (reference trainer, vectorised engine,
scikit-learn estimator) and the plots of learned activation shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..._checks import did_you_mean

__all__ = ["Candidate", "register_candidate", "get_candidate", "list_candidates"]

Candidate = Callable[[Tensor], Tensor]

_REGISTRY: dict[str, Candidate] = {}


def register_candidate(name: str, fn: Candidate) -> Candidate:
    """Register ``fn`` under ``name``; registering a name twice is an error.

    Args:
        name: Lower-case identifier used in configs (``"relu"``).
        fn: Elementwise function; output has the input's shape and dtype.

    Returns:
        ``fn`` itself, so this can be used as a decorator helper.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"candidate name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"candidate {name!r} is already registered")
    if not callable(fn):
        raise TypeError(f"candidate {name!r} must be callable, got {type(fn).__name__}")
    _REGISTRY[name] = fn
    return fn


def get_candidate(name: str) -> Candidate:
    """Look up a candidate by name.

    Raises:
        ValueError: ``name`` is unknown; the message lists the valid names.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(_REGISTRY))
        raise ValueError(
            f"unknown activation {name!r}{did_you_mean(str(name), _REGISTRY)}; valid: {valid}"
        ) from None


def list_candidates() -> list[str]:
    """Names of all registered candidates, sorted."""
    return sorted(_REGISTRY)


def _sin(x: Tensor) -> Tensor:
    return torch.sin(x)


def _identity(x: Tensor) -> Tensor:
    return x


def _leaky_relu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.01)


for _name, _fn in {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "silu": F.silu,
    "elu": F.elu,
    "softplus": F.softplus,
    "leaky_relu": _leaky_relu,
    "identity": _identity,
    "sin": _sin,
}.items():
    register_candidate(_name, _fn)
