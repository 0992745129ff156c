"""Candidate activation functions and their registry.

A candidate is a pure ``Tensor -> Tensor`` elementwise function. It is written
once here and serves every engine (reference trainer, vectorised engine,
scikit-learn estimator) and the plots of learned activation shapes.

A candidate may also register its *derivative*: the backward formula autograd
applies to it, as a call of the same kernel (``tanh_backward`` for ``tanh``).
The vectorised engine, which derives gradients by hand, then calls it instead
of recording an autograd node every step; the result is the same bit for bit
(``tests/model/test_candidates.py`` checks every registered derivative against
autograd). Candidates without one are differentiated by autograd.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ... import names
from ..._checks import did_you_mean

__all__ = [
    "Candidate",
    "Derivative",
    "candidate_derivative",
    "get_candidate",
    "list_candidates",
    "register_candidate",
]

Candidate = Callable[[Tensor], Tensor]
#: ``derivative(grad, x, y)``: the gradient with respect to ``x`` of ``y = fn(x)``, given ``grad``.
Derivative = Callable[[Tensor, Tensor, Tensor], Tensor]

_REGISTRY: dict[str, Candidate] = {}
_DERIVATIVES: dict[Candidate, Derivative] = {}


def register_candidate(name: str, fn: Candidate, derivative: Derivative | None = None) -> Candidate:
    """Register ``fn`` under ``name``; registering a name twice is an error.

    Args:
        name: Lower-case identifier used in configs (``"relu"``).
        fn: Elementwise function; output has the input's shape and dtype.
        derivative: Optional ``(grad, x, y) -> grad_x`` computing exactly what
            autograd computes for ``y = fn(x)`` (same kernel, same operation
            order); without it, engines that need the derivative use autograd.

    Returns:
        ``fn`` itself, so this can be used as a decorator helper.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"candidate name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"candidate {name!r} is already registered")
    if not callable(fn):
        raise TypeError(f"candidate {name!r} must be callable, got {type(fn).__name__}")
    if derivative is not None and not callable(derivative):
        raise TypeError(f"derivative of candidate {name!r} must be callable, got {type(derivative).__name__}")
    # tried now, as a candidate named by import path is: one that sums over an axis or changes the dtype had been
    # registered, and every run of it failed as an internal error
    _check_elementwise(name, fn, "register an elementwise function")
    return _add(name, fn, derivative)


def _add(name: str, fn: Candidate, derivative: Derivative | None = None) -> Candidate:
    """Put a checked candidate in the registries (this module's and the name registry config validation reads)."""
    _REGISTRY[name] = fn
    names.add_candidate(name)
    if derivative is not None:
        _DERIVATIVES[fn] = derivative
    return fn


def candidate_derivative(fn: Candidate) -> Derivative | None:
    """The registered derivative of candidate function ``fn``, or ``None`` (use autograd)."""
    return _DERIVATIVES.get(fn)


def get_candidate(name: str) -> Candidate:
    """Look up a candidate by name.

    Raises:
        ValueError: ``name`` is unknown; the message lists the valid names.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        if isinstance(name, str) and ":" in name:  # a user candidate by import path: import, register, use
            from ...plugins import resolve_import_path

            fn = resolve_import_path(name)
            if not callable(fn):
                raise ValueError(f"candidate {name!r} names a {type(fn).__name__}, not a function; point it at a "
                                 f"function Tensor -> Tensor") from None
            _check_elementwise(name, fn)  # once, with the advice for an import path
            return _add(name, fn)
        valid = ", ".join(sorted(_REGISTRY))
        raise ValueError(
            f"unknown activation {name!r}{did_you_mean(str(name), _REGISTRY)}; valid: {valid}"
        ) from None


def _check_elementwise(name: str, fn: Candidate, fix: str = "point it at an elementwise function") -> None:
    """Raise ``ValueError`` unless ``fn`` maps a small float32 tensor to a tensor of its shape and dtype, value by
    value (permuting the input permutes the output): a candidate is tried once when it is registered or its import
    path resolved (``os:getcwd`` was accepted, and every run then failed with an internal error). ``fix``: the
    message's advice, for the way the candidate was given."""
    # a layer's (batch, width) and a stack's (members, batch, width): the vectorised engine passes the latter
    for probe in (torch.linspace(-2.0, 2.0, 6).reshape(2, 3), torch.linspace(-2.0, 2.0, 12).reshape(2, 2, 3)):
        shape = "x".join(map(str, probe.shape))
        try:
            with torch.no_grad():
                out = fn(probe)
                order = torch.roll(torch.arange(probe.numel()), 1)  # every value to a new place, rows mixed
                moved = fn(probe.flatten()[order].reshape(probe.shape))
        except Exception as exc:  # noqa: BLE001 - the user's function: any failure is reported as such
            raise ValueError(f"candidate {name!r} is not an activation: calling it on a {shape} tensor raised "
                             f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}; {fix} Tensor -> Tensor "
                             f"of the same shape and dtype (any number of dimensions)") from None
        if not isinstance(out, torch.Tensor) or out.shape != probe.shape or out.dtype != probe.dtype:
            got = (f"shape {tuple(out.shape)}, dtype {str(out.dtype).removeprefix('torch.')}"
                   if isinstance(out, torch.Tensor) else type(out).__name__)
            raise ValueError(f"candidate {name!r} is not an activation: on a {shape} float32 tensor it returned "
                             f"{got}; {fix} Tensor -> Tensor of the same shape and dtype")
        if not (isinstance(moved, torch.Tensor) and moved.shape == probe.shape
                and torch.allclose(moved.flatten(), out.flatten()[order], rtol=1e-5, atol=1e-6, equal_nan=True)):
            raise ValueError(f"candidate {name!r} is not an activation: its value at one element depends on the "
                             f"others (on a {shape} tensor, reordering the input did not reorder the output); "
                             f"{fix}, each value computed from its own input alone")


def list_candidates() -> list[str]:
    """Names of all registered candidates, sorted."""
    return sorted(_REGISTRY)


def _sin(x: Tensor) -> Tensor:
    return torch.sin(x)


def _identity(x: Tensor) -> Tensor:
    return x


def _leaky_relu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.01)


_aten = torch.ops.aten

# name: (function, derivative as autograd computes it; see PyTorch's derivatives.yaml)
for _name, (_fn, _derivative) in {
    "relu": (torch.relu, lambda g, x, y: _aten.threshold_backward(g, y, 0)),
    "tanh": (torch.tanh, lambda g, x, y: _aten.tanh_backward(g, y)),
    "sigmoid": (torch.sigmoid, lambda g, x, y: _aten.sigmoid_backward(g, y)),
    "gelu": (F.gelu, lambda g, x, y: _aten.gelu_backward(g, x)),
    "silu": (F.silu, lambda g, x, y: _aten.silu_backward(g, x)),
    "elu": (F.elu, None),
    "softplus": (F.softplus, lambda g, x, y: _aten.softplus_backward(g, x, 1, 20)),
    "leaky_relu": (_leaky_relu, lambda g, x, y: _aten.leaky_relu_backward(g, x, 0.01, False)),
    "identity": (_identity, lambda g, x, y: g),
    "sin": (_sin, lambda g, x, y: g * x.cos()),
}.items():
    register_candidate(_name, _fn, _derivative)
