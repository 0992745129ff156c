"""Other learnable activation families (the paper's section 6).

Each family is a pure function of the input and its parameters
(``prelu(x, slope)``, ``rational(x, num, den)``, ...) plus a small module that
holds the parameters, shared by all units of a layer. Parameters broadcast, so
a stacked engine can pass a member axis. Families are registered by name
(:func:`get_family`) and selected with ``ActivationConfig(kind=<name>)``.

Families:
    - ``prelu``: ``max(0, x) + a * min(0, x)``, slope ``a`` learned (He et al., 2015).
    - ``swish``: ``x * sigmoid(beta * x)``, ``beta`` learned (Ramachandran et al., 2017).
    - ``rational``: safe Padé unit ``P(x) / (1 + |Q(x)|)``, degrees 5/4, initialised
      to approximate leaky ReLU (Molina et al., 2020).
    - ``pwl``: piecewise linear through learned values at fixed knots, linear
      beyond the end knots; initialised to ReLU.
    - ``maxout``: ``max_j (a_j x + b_j)`` over learned affine pieces of the
      pre-activation (a convex piecewise-linear unit); initialised to ReLU.
    - ``kernel``: kernel activation function ``sum_i alpha_i exp(-gamma (x - d_i)^2)``
      over a fixed dictionary, ``alpha`` learned, initialised to approximate ELU
      (Scardapane et al., 2019), with learned linear tails beyond the dictionary.
    - ``neural``: a tiny scalar network ``x + W2 tanh(W1 x + b1) + b2`` applied
      elementwise (residual form keeps gradients stable at the start).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..._checks import did_you_mean

__all__ = [
    "prelu",
    "swish",
    "rational",
    "pwl",
    "maxout",
    "kernel_activation",
    "ParametricActivation",
    "register_family",
    "get_family",
    "list_families",
]


# --- the maths (pure functions) ------------------------------------------------


def prelu(x: Tensor, slope: Tensor) -> Tensor:
    """``max(0, x) + slope * min(0, x)``. Shape: ``slope`` broadcasts to ``x``."""
    return torch.relu(x) - slope * torch.relu(-x)


def swish(x: Tensor, beta: Tensor) -> Tensor:
    """``x * sigmoid(beta * x)``. Shape: ``beta`` broadcasts to ``x``."""
    return x * torch.sigmoid(beta * x)


def _powers(x: Tensor, degree: int) -> Tensor:
    return torch.stack([x**j for j in range(degree + 1)], dim=-1)


def rational(x: Tensor, numerator: Tensor, denominator: Tensor) -> Tensor:
    """Safe Padé activation ``sum_j p_j x^j / (1 + |sum_j q_j x^j|)``.

    Shape:
        - x: ``(*)``
        - numerator: ``(**, m + 1)`` coefficients ``p_0..p_m``; ``**`` broadcasts to ``(*)``
        - denominator: ``(**, n)`` coefficients ``q_1..q_n``
        - output: ``(*)``
    """
    m = numerator.shape[-1] - 1
    n = denominator.shape[-1]
    xp = _powers(x, max(m, n))
    p = (xp[..., : m + 1] * numerator).sum(-1)
    q = (xp[..., 1 : n + 1] * denominator).sum(-1)
    return p / (1 + q.abs())


def pwl(x: Tensor, values: Tensor, lo: float, hi: float) -> Tensor:
    """Linear interpolation through ``values`` at ``K + 1`` equally spaced knots on ``[lo, hi]``.

    Beyond the end knots the end segments continue linearly.

    Shape:
        - x: ``(*)``; values: ``(K + 1,)``; output: ``(*)``
    """
    k = values.shape[-1] - 1
    step = (hi - lo) / k
    pos = ((x - lo) / step).clamp(0, k - 1e-6)
    idx = pos.floor().long().clamp(0, k - 1)
    left = values[idx]
    right = values[idx + 1]
    t = (x - lo) / step - idx.to(x.dtype)  # unclamped: extrapolates the end segments
    return left + t * (right - left)


def maxout(x: Tensor, slopes: Tensor, offsets: Tensor) -> Tensor:
    """``max_j (slopes_j * x + offsets_j)``.

    Shape:
        - x: ``(*)``; slopes, offsets: ``(J,)``; output: ``(*)``
    """
    return (x.unsqueeze(-1) * slopes + offsets).amax(dim=-1)


def kernel_activation(x: Tensor, alpha: Tensor, dictionary: Tensor, gamma: float, tails: Tensor) -> Tensor:
    """Gaussian kernel expansion on the dictionary's range, with linear tails beyond it.

    ``k(clamp(x)) + tails[1] * relu(x - d_max) - tails[0] * relu(d_min - x)`` where
    ``k(u) = sum_i alpha_i exp(-gamma (u - d_i)^2)``.

    Shape:
        - x: ``(*)``; alpha, dictionary: ``(D,)``; tails: ``(2,)``; output: ``(*)``
    """
    lo, hi = dictionary[0], dictionary[-1]
    u = torch.minimum(torch.maximum(x, lo), hi)
    k = (torch.exp(-gamma * (u.unsqueeze(-1) - dictionary) ** 2) * alpha).sum(-1)
    return k + tails[1] * torch.relu(x - hi) - tails[0] * torch.relu(lo - x)


# --- initial values fitted once, deterministically ------------------------------


@functools.lru_cache(maxsize=None)
def _rational_init(num_degree: int, den_degree: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Least-squares fit of ``P / (1 + Q)`` to leaky ReLU on [-3, 3] (linearised)."""
    x = np.linspace(-3, 3, 2001)
    y = np.where(x > 0, x, 0.01 * x)
    A = np.concatenate([np.stack([x**j for j in range(num_degree + 1)], 1),
                        -y[:, None] * np.stack([x**j for j in range(1, den_degree + 1)], 1)], 1)
    c = np.linalg.lstsq(A, y, rcond=None)[0]
    return tuple(c[: num_degree + 1].tolist()), tuple(c[num_degree + 1 :].tolist())


@functools.lru_cache(maxsize=None)
def _kernel_init(size: int, lo: float, hi: float, gamma: float) -> tuple[float, ...]:
    """Ridge fit of the kernel coefficients to ELU on the dictionary's range."""
    d = np.linspace(lo, hi, size)
    x = np.linspace(lo, hi, 1001)
    K = np.exp(-gamma * (x[:, None] - d[None, :]) ** 2)
    y = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    alpha = np.linalg.solve(K.T @ K + 1e-4 * np.eye(size), K.T @ y)
    return tuple(alpha.tolist())


# --- modules ------------------------------------------------------------------------


class ParametricActivation(nn.Module):
    """Base of the learnable families: parameters shared by the layer's units.

    Shape:
        - x: ``(b, d)``; output: ``(b, d)``
    """

    family = ""

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:  # noqa: D102
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"family={self.family!r}"


class PReLU(ParametricActivation):
    family = "prelu"

    def __init__(self, init: float = 0.25) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return prelu(x, self.slope)


class Swish(ParametricActivation):
    family = "swish"

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return swish(x, self.beta)


class Rational(ParametricActivation):
    family = "rational"

    def __init__(self, num_degree: int = 5, den_degree: int = 4) -> None:
        super().__init__()
        p, q = _rational_init(num_degree, den_degree)
        self.numerator = nn.Parameter(torch.tensor(p, dtype=torch.float32))
        self.denominator = nn.Parameter(torch.tensor(q, dtype=torch.float32))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return rational(x, self.numerator, self.denominator)


class PiecewiseLinear(ParametricActivation):
    family = "pwl"

    def __init__(self, n_segments: int = 8, lo: float = -3.0, hi: float = 3.0) -> None:
        super().__init__()
        self.lo, self.hi = float(lo), float(hi)
        self.values = nn.Parameter(torch.relu(torch.linspace(lo, hi, n_segments + 1)))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return pwl(x, self.values, self.lo, self.hi)


class Maxout(ParametricActivation):
    family = "maxout"

    def __init__(self) -> None:
        super().__init__()
        # ReLU plus a third piece that is inactive at the start (below the others everywhere)
        self.slopes = nn.Parameter(torch.tensor([0.0, 1.0, 0.5]))
        self.offsets = nn.Parameter(torch.tensor([0.0, 0.0, -1.0]))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return maxout(x, self.slopes, self.offsets)


class KernelActivation(ParametricActivation):
    family = "kernel"

    def __init__(self, size: int = 20, lo: float = -3.0, hi: float = 3.0) -> None:
        super().__init__()
        spacing = (hi - lo) / (size - 1)
        self.gamma = 1.0 / (2.0 * spacing**2)
        self.register_buffer("dictionary", torch.linspace(lo, hi, size))
        self.alpha = nn.Parameter(torch.tensor(_kernel_init(size, lo, hi, self.gamma), dtype=torch.float32))
        self.tails = nn.Parameter(torch.tensor([0.0, 1.0]))  # ELU-like: flat left, identity right

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return kernel_activation(x, self.alpha, self.dictionary, self.gamma, self.tails)


class NeuralActivation(ParametricActivation):
    family = "neural"

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.inner = nn.Linear(1, hidden)
        self.outer = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return x + self.outer(torch.tanh(self.inner(x.unsqueeze(-1)))).squeeze(-1)


_FAMILIES: dict[str, Callable[[], ParametricActivation]] = {}


def register_family(name: str, factory: Callable[[], ParametricActivation]) -> None:
    """Register a learnable family under ``name``; registering twice is an error."""
    if name in _FAMILIES or name in ("fixed", "gated"):
        raise ValueError(f"activation family {name!r} is already registered")
    _FAMILIES[name] = factory


def get_family(name: str) -> Callable[[], ParametricActivation]:
    """The factory of a family; unknown names list the valid ones."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown activation family {name!r}{did_you_mean(name, _FAMILIES)}; "
                         f"valid: {', '.join(sorted(_FAMILIES))}") from None


def list_families() -> list[str]:
    """Names of the learnable families, sorted."""
    return sorted(_FAMILIES)


for _cls in (PReLU, Swish, Rational, PiecewiseLinear, Maxout, KernelActivation, NeuralActivation):
    register_family(_cls.family, _cls)

