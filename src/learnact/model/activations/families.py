"""Other learnable activation families (the paper's section 6).

Each family is a pure function of the input and its parameters
(``prelu(x, slope)``, ``rational(x, num, den)``, ...) plus a module that holds
the parameters. Families are registered by name (:func:`get_family`) and
selected with ``ActivationConfig(kind=<name>, params={...})``; ``params`` is
checked against the family's hyper-parameter class (:func:`family_params_model`).

**Granularity.** Every family takes ``granularity``: ``"layer"`` (one
parameter set shared by all units of the layer) or ``"unit"`` (one set per
unit, like ``nn.PReLU(num_parameters=C)``; the module then needs ``width``).
Per-unit parameters carry the unit axis first (``slope: (d,)``,
``values: (d, K + 1)``) and it matches the input's unit axis ``dim``: the
*last* axis of ``x: (*, d)`` by default (``dim=-1``), the channel axis of
``(N, C, L)`` or ``(N, C, H, W)`` feature maps with ``dim=1`` (the module moves
it last, applies the maths and moves it back; each channel's parameters are
shared by all its positions); per-layer ones drop that axis. Per-unit sets start equal
(except ``neural``, drawn at random like ``nn.Linear``). The pure functions
broadcast the parameters against ``x``, so the layout is the same for any
leading axes; a stacked engine adds a member axis with ``torch.func.vmap``
(no family branches on tensor values, calls ``.item()`` or writes its
parameters in place).

**Initial shape.** A family that starts near a known function says so with
:meth:`ParametricActivation.starts_near` (function and tolerance, max
absolute error on ``[-3, 3]``); ``tests/model/test_contract.py`` checks every
claim.

Families (hyper-parameters in brackets, defaults after ``=``):
    - ``prelu``: ``max(0, x) + a * min(0, x)`` (He et al., 2015); ``a`` learned
      [``init_slope=0.25``]. Starts at leaky ReLU with slope ``init_slope`` (exact).
    - ``swish``: ``x * sigmoid(beta * x)`` (Ramachandran et al., 2017); ``beta``
      learned [``init_beta=1``]. Starts at that function (SiLU for ``beta = 1``, exact).
    - ``rational``: safe Padé unit ``P(x) / (1 + |Q(x)|)`` (Molina et al., 2020),
      ``P`` of degree ``m``, ``Q = q_1 x + ... + q_n x^n``; coefficients learned
      [``num_degree=5``, ``den_degree=4``]. Initialised by a (linearised) least
      squares fit to leaky ReLU (0.01) on [-3, 3]: within 0.07 at the default
      degrees. High degrees overflow float32 for very large inputs (``|x|^m``).
    - ``pwl``: piecewise linear through learned values at ``segments + 1`` equally
      spaced knots on ``[lo, hi]``, the end segments continued linearly beyond
      [``segments=8``, ``lo=-3``, ``hi=3``]. Starts at ReLU (exact when 0 is a
      knot, as at the defaults).
    - ``maxout``: ``max_j (a_j x + b_j)`` over ``pieces`` learned affine pieces of
      the pre-activation, a convex piecewise-linear unit [``pieces=3``]. Starts at
      ReLU (exact): pieces ``0`` and ``x``, the others ``t x - 1`` with ``t`` in
      (0, 1), below those everywhere.
    - ``kernel``: kernel activation function (Scardapane et al., 2019)
      ``sum_i alpha_i exp(-gamma (u - d_i)^2)`` at ``u = clamp(x, lo, hi)`` over a
      fixed dictionary of ``size`` points ``d_i`` on ``[lo, hi]``,
      ``gamma = 1 / (2 spacing^2)``, plus learned linear tails beyond the
      dictionary; ``alpha`` and the tails learned [``size=20``, ``lo=-3``,
      ``hi=3``]. ``alpha`` is a ridge fit to ELU: within 0.13 of ELU on [-3, 3]
      at the defaults.
    - ``neural``: a tiny scalar network ``x + w2 . tanh(w1 x + b1) + b2`` applied
      elementwise, the residual form keeping gradients stable at the start
      [``hidden=8``]; weights drawn as ``nn.Linear(1, hidden)`` and
      ``nn.Linear(hidden, 1)`` draw theirs (no initial-shape claim).
    - ``spline``: KAN-style B-spline (Liu et al., 2024)
      ``w_b * base(x) + w_s * sum_i c_i B_i(x)``: ``B_i`` the ``grid_size + order``
      B-splines of order ``order`` on ``grid_size`` equal intervals of ``[lo, hi]``,
      the knot grid extended by ``order`` knots on each side; evaluated locally:
      the ``order + 1`` B-splines non-zero on the cell holding ``x`` (Cox-de Boor
      on that cell) times their coefficients, read by index, not the full basis;
      ``c``, ``w_b``, ``w_s`` learned; one set per unit by default
      [``granularity="unit"``, ``order=3``, ``grid_size=5``, ``lo=-3``, ``hi=3``,
      ``init="silu"``, ``base="silu"``]. ``w_b = w_s = 1`` and ``c`` is the least
      squares fit of ``init - base`` on ``[lo, hi]``, so the unit starts near the
      candidate ``init``; at the default grid and base, within: silu 1e-6 (``c = 0``),
      identity 0.005, sigmoid 0.005, softplus 0.005, tanh 0.01, sin 0.01,
      gelu 0.015, elu 0.02, relu 0.14, leaky_relu 0.14 on [-3, 3]. **Outside the
      grid** the spline term fades out: on ``[hi, hi + order * h]`` (and its mirror
      below ``lo``; ``h = (hi - lo) / grid_size``) only the last B-splines are
      non-zero, and beyond the extended grid the spline term and its gradients are
      exactly zero, so the output is ``w_b * base(x)``: the base carries the
      inputs the grid does not cover.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import Tensor, nn

from ... import names
from ..._checks import check_positive_int, did_you_mean
from ...config import describe_errors
from ...family_params import (
    FamilyParams,
    Granularity,
    KernelParams,
    MaxoutParams,
    NeuralParams,
    PiecewiseLinearParams,
    PReLUParams,
    RationalParams,
    SplineParams,
    SwishParams,
)
from ..state import tolerate_missing_extra_state
from .candidates import Candidate, get_candidate
from .gated import check_dim, unit_axis

__all__ = [
    "prelu",
    "swish",
    "rational",
    "pwl",
    "maxout",
    "kernel_activation",
    "neural",
    "bspline_basis",
    "local_bsplines",
    "spline",
    "InitClaim",
    "ParametricActivation",
    "PReLUParams",
    "SwishParams",
    "RationalParams",
    "PiecewiseLinearParams",
    "MaxoutParams",
    "KernelParams",
    "NeuralParams",
    "SplineParams",
    "register_family",
    "get_family",
    "family_params_model",
    "list_families",
]


# --- the maths (pure functions) ------------------------------------------------
# Parameters broadcast against x: ``()`` / ``(P,)`` for one set per layer, ``(d,)`` / ``(d, P)`` per unit
# (the unit axis matching x's last axis).


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
        - x: ``(*)``; values: ``(K + 1,)`` (one set) or ``(**, K + 1)`` with ``**``
          broadcasting to ``(*)`` (e.g. ``(d, K + 1)`` per unit); output: ``(*)``
    """
    k = values.shape[-1] - 1
    step = (hi - lo) / k
    pos = ((x - lo) / step).clamp(0, k - 1e-6)
    idx = pos.floor().long().clamp(0, k - 1)
    if values.dim() == 1:
        left = values[idx]
        right = values[idx + 1]
    else:
        table = values.expand(*x.shape, k + 1)
        left = table.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        right = table.gather(-1, (idx + 1).unsqueeze(-1)).squeeze(-1)
    t = (x - lo) / step - idx.to(x.dtype)  # unclamped: extrapolates the end segments
    return left + t * (right - left)


def maxout(x: Tensor, slopes: Tensor, offsets: Tensor) -> Tensor:
    """``max_j (slopes_j * x + offsets_j)``.

    Shape:
        - x: ``(*)``; slopes, offsets: ``(**, J)``, ``**`` broadcasting to ``(*)``; output: ``(*)``
    """
    return (x.unsqueeze(-1) * slopes + offsets).amax(dim=-1)


def kernel_activation(x: Tensor, alpha: Tensor, dictionary: Tensor, gamma: float, tails: Tensor) -> Tensor:
    """Gaussian kernel expansion on the dictionary's range, with linear tails beyond it.

    ``k(clamp(x)) + tails[1] * relu(x - d_max) - tails[0] * relu(d_min - x)`` where
    ``k(u) = sum_i alpha_i exp(-gamma (u - d_i)^2)``.

    Shape:
        - x: ``(*)``; dictionary: ``(D,)``, increasing; alpha: ``(**, D)``;
          tails: ``(**, 2)`` (``**`` broadcasting to ``(*)``); output: ``(*)``
    """
    lo, hi = dictionary[0], dictionary[-1]
    u = torch.minimum(torch.maximum(x, lo), hi)
    k = (torch.exp(-gamma * (u.unsqueeze(-1) - dictionary) ** 2) * alpha).sum(-1)
    return k + tails[..., 1] * torch.relu(x - hi) - tails[..., 0] * torch.relu(lo - x)


def neural(x: Tensor, inner_weight: Tensor, inner_bias: Tensor, outer_weight: Tensor, outer_bias: Tensor) -> Tensor:
    """Residual scalar network ``x + sum_j w2_j tanh(w1_j x + b1_j) + b2``, elementwise.

    Shape:
        - x: ``(*)``; inner_weight, inner_bias, outer_weight: ``(**, h)``;
          outer_bias: ``(**)`` (``**`` broadcasting to ``(*)``); output: ``(*)``
    """
    hidden = torch.tanh(x.unsqueeze(-1) * inner_weight + inner_bias)
    return x + (hidden * outer_weight).sum(-1) + outer_bias


def bspline_basis(x: Tensor, knots: Tensor, order: int) -> Tensor:
    """The B-splines of order ``order`` on ``knots`` at ``x`` (Cox-de Boor recursion).

    Order 0 is the indicator of ``[t_i, t_{i+1})``; each order mixes two
    neighbours of the one below. Inputs outside ``[t_0, t_last)`` get zeros.
    Tensor operations only (no branching on values), so it runs under ``vmap``.
    The whole basis, for any increasing knots: the spline's initial least
    squares fit uses it, and a test holds :func:`spline`'s local evaluation to it.

    Shape:
        - x: ``(*)``; knots: ``(N,)`` increasing; output: ``(*, N - 1 - order)``
    """
    u = x.unsqueeze(-1)
    basis = ((u >= knots[:-1]) & (u < knots[1:])).to(x.dtype)
    for p in range(1, order + 1):
        left = (u - knots[: -(p + 1)]) / (knots[p:-1] - knots[: -(p + 1)]) * basis[..., :-1]
        right = (knots[p + 1 :] - u) / (knots[p + 1 :] - knots[1:-p]) * basis[..., 1:]
        basis = left + right
    return basis


def local_bsplines(x: Tensor, knots: Tensor, order: int) -> tuple[Tensor, list[Tensor]]:
    """The ``order + 1`` B-splines that are non-zero at ``x``, on equally spaced knots, times ``order!``.

    On the cell ``[t_j, t_j+1)`` holding ``x`` only ``B_{j-order}, ..., B_j``
    are non-zero; on equally spaced knots they are polynomials in the
    position ``t = (x - t_j) / h`` within the cell, the same on every cell.
    Cox-de Boor's recursion on that cell alone gives them without the
    ``N - 1 - order`` wide basis :func:`bspline_basis` computes (here without
    its ``1 / p`` factors: the values are ``order!`` times the B-splines).

    Returns:
        ``(start, values)``: ``start`` (int64, ``x``'s shape) is ``j + 1`` inside
        ``[t_0, t_last)``, ``0`` left of it (NaN included) and ``N`` right of it;
        ``values[r]`` (``x``'s shape) is ``order!`` times ``B_{j - order + r}(x)``
        on the cell ``x`` falls in (a cell beyond the grid's ends outside it).

    Shape:
        - x: ``(*)``; knots: ``(N,)`` equally spaced, increasing
    """
    n_knots = knots.shape[-1]
    s = (x - knots[0]) / ((knots[-1] - knots[0]) / (n_knots - 1))
    cell = s.floor()
    t = s - cell
    start = torch.nan_to_num(cell, nan=-1.0).clamp(-1.0, n_knots - 1.0).long() + 1
    rest = 1.0 - t
    values = [rest, t]
    # order p from order p - 1: v_r <- (t + p - r) v_{r-1} + (r + 1 - t) v_r (terms with v_{-1}, v_p left out)
    for p in range(2, order + 1):
        inner = [(t + (p - r)) * values[r - 1] + ((r + 1) - t) * values[r] for r in range(1, p)]
        values = [rest * values[0], *inner, t * values[p - 1]]
    return start, values


def spline(x: Tensor, coefficients: Tensor, knots: Tensor, order: int, base_weight: Tensor,
           spline_weight: Tensor, base: Candidate) -> Tensor:
    """KAN-style activation ``base_weight * base(x) + spline_weight * sum_i c_i B_i(x)``.

    The sum runs over the ``order + 1`` B-splines non-zero at ``x``
    (:func:`local_bsplines`), reading their coefficients by index: it equals
    the full sum over :func:`bspline_basis` (a test holds them within 1e-12
    in float64), at about a third of its cost. Outside ``[t_0, t_last)`` the
    spline term and its gradients are zero (indices into zero padding).

    Shape:
        - x: ``(*)``; knots: ``(N,)`` equally spaced; coefficients: ``(**, N - 1 - order)``;
          base_weight, spline_weight: ``(**)`` (``**`` broadcasting to ``(*)``); output: ``(*)``
    """
    start, values = local_bsplines(x, knots, order)
    # order + 1 zeros each side: the window of a point outside the knots reads zeros only
    padded = F.pad(coefficients * (1.0 / math.factorial(order)), (order + 1, order + 1))
    width = padded.shape[-1]
    rows = torch.arange(0, padded[..., 0].numel() * width, width, device=x.device).view(padded.shape[:-1])
    # index_select, not advanced indexing: the same values and the same gradient (index_add_ into zeros, in the
    # indices' order, as indexing's index_put_ accumulates), at about a third of the cost each way
    index = ((rows + start).unsqueeze(-1) + torch.arange(order + 1, device=x.device)).reshape(-1)
    window = padded.reshape(-1).index_select(0, index).view(*start.shape, order + 1)
    picked = window.unbind(-1)
    total = values[0] * picked[0]
    for value, c in zip(values[1:], picked[1:], strict=True):
        total = total + value * c
    return base_weight * base(x) + spline_weight * total


# --- initial values fitted once, deterministically ------------------------------


@functools.cache
def _rational_init(num_degree: int, den_degree: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Least-squares fit of ``P / (1 + Q)`` to leaky ReLU on [-3, 3] (linearised)."""
    x = np.linspace(-3, 3, 2001)
    y = np.where(x > 0, x, 0.01 * x)
    powers = np.stack([x**j for j in range(max(num_degree, den_degree) + 1)], 1)
    A = np.concatenate([powers[:, : num_degree + 1], -y[:, None] * powers[:, 1 : den_degree + 1]], 1)  # Q: none at 0
    c = np.linalg.lstsq(A, y, rcond=None)[0]
    return tuple(c[: num_degree + 1].tolist()), tuple(c[num_degree + 1 :].tolist())


@functools.cache
def _kernel_init(size: int, lo: float, hi: float, gamma: float) -> tuple[float, ...]:
    """Ridge fit of the kernel coefficients to ELU on the dictionary's range."""
    d = np.linspace(lo, hi, size)
    x = np.linspace(lo, hi, 1001)
    K = np.exp(-gamma * (x[:, None] - d[None, :]) ** 2)
    y = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    alpha = np.linalg.solve(K.T @ K + 1e-4 * np.eye(size), K.T @ y)
    return tuple(alpha.tolist())


def _spline_knots(order: int, grid_size: int, lo: float, hi: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """``grid_size + 2 order + 1`` equally spaced knots: the grid on [lo, hi] plus ``order`` each side."""
    h = (hi - lo) / grid_size
    return torch.linspace(lo - order * h, hi + order * h, grid_size + 2 * order + 1, dtype=torch.float64).to(dtype)


@functools.cache
def _spline_init(order: int, grid_size: int, lo: float, hi: float, init: str, base: str) -> tuple[float, ...]:
    """Least squares coefficients of ``init - base`` on [lo, hi] (``c = 0`` when they are the same function)."""
    if init == base:
        return (0.0,) * (grid_size + order)
    knots = _spline_knots(order, grid_size, lo, hi, torch.float64)
    x = torch.linspace(lo, hi, 50 * grid_size + 1, dtype=torch.float64)
    target = get_candidate(init)(x) - get_candidate(base)(x)
    c = torch.linalg.lstsq(bspline_basis(x, knots, order), target.unsqueeze(-1), driver="gelsd").solution
    return tuple(c.squeeze(-1).tolist())


# --- modules ------------------------------------------------------------------------


class InitClaim(NamedTuple):
    """A family's initial shape: ``function`` within ``tolerance`` (max abs error) on [-3, 3]."""

    name: str
    function: Callable[[Tensor], Tensor]
    tolerance: float


class ParametricActivation(nn.Module):
    """Base of the learnable families.

    Args:
        width: Number of units ``d`` of the layer (required for ``granularity="unit"``).
        dim: The input's unit (channel) axis for ``granularity="unit"``: ``-1``
            for ``(N, F)``, ``1`` for ``(N, C, L)`` or ``(N, C, H, W)``; per-layer
            modules ignore it.
        **params: The family's hyper-parameters (its :class:`FamilyParams`
            subclass, ``Params``), ``granularity`` included; missing ones take
            the defaults, bad ones raise ``ValueError`` naming them.

    Shape:
        - x: ``(*, d)`` (per unit, ``dim=-1``), ``(N, d, *)`` (per unit, ``dim=1``) or
          ``(*)`` (per layer); output: same as x
    """

    family: ClassVar[str] = ""
    Params: ClassVar[type[FamilyParams]] = FamilyParams
    hparams: FamilyParams  # validated hyper-parameters; subclasses narrow the type

    def __init__(self, width: int | None = None, *, dim: int = -1, **params: Any) -> None:
        super().__init__()
        self.dim = check_dim(dim)
        try:
            self.hparams = self.Params.model_validate(params)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, loc)) or 'params'}: {msg}"
                                 for loc, msg in describe_errors(err, self.Params))
            raise ValueError(f"invalid {self.family} parameters: {problems}") from None
        if width is not None:
            check_positive_int(width, "width")
        if self.granularity == "unit" and width is None:
            raise ValueError(f"{self.family} with granularity='unit' needs width (the number of units), "
                             f"got width=None")
        self.width = width
        self._build()

    def _build(self) -> None:
        """Create the parameters from ``self.hparams`` (subclasses)."""

    @property
    def granularity(self) -> Granularity:
        """``"layer"`` (one parameter set) or ``"unit"`` (one per unit)."""
        return self.hparams.granularity

    def _parameter(self, value: Tensor) -> nn.Parameter:
        """``value`` as a parameter; per unit, one copy for each of the ``width`` units (leading axis)."""
        if self.granularity == "unit":
            assert self.width is not None
            value = value.expand(self.width, *value.shape)
        return nn.Parameter(value.clone())

    def function(self, x: Tensor) -> Tensor:
        """The family's maths with this module's parameters, units on x's last axis (subclasses)."""
        raise NotImplementedError

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.granularity != "unit":
            return self.function(x)
        axis = unit_axis(x, self.dim, self.width, f"{self.family} activation (granularity='unit')")
        if axis == x.dim() - 1:
            return self.function(x)
        return self.function(x.movedim(axis, -1)).movedim(-1, axis)

    def curves(self, x: Tensor) -> Tensor:
        """The learned function of each parameter set at the points ``x``.

        Shape:
            - x: ``(n,)``; output: ``(n, d)`` per unit, ``(n, 1)`` per layer
        """
        points = x.reshape(-1, 1)
        if self.granularity == "unit":
            assert self.width is not None
            points = points.expand(-1, self.width)
        return self(points)

    def starts_near(self) -> InitClaim | None:
        """The function this module starts near, with its tolerance on [-3, 3] (``None``: no claim)."""
        return None

    def draw_parameters_(self, generator: torch.Generator | None) -> None:
        """Redraw any randomly initialised parameters from ``generator`` (see ``init_parameters_``)."""

    def get_extra_state(self) -> dict[str, Any]:
        """The family name and hyper-parameters, saved in the state_dict and checked at load."""
        return {"family": self.family, "params": self.hparams.model_dump(mode="json")}

    def set_extra_state(self, state: Any) -> None:
        """Refuse a state saved from another family or other hyper-parameters (``ValueError`` naming both)."""
        if not isinstance(state, dict):
            return
        mine = self.get_extra_state()
        # granularity is left to the tensors' shapes (a unit's slice of a per-unit state fits a per-layer module)
        saved = {k: v for k, v in state.get("params", mine["params"]).items() if k != "granularity"}
        if state.get("family", self.family) != self.family or saved != {
                k: v for k, v in mine["params"].items() if k != "granularity"}:
            raise ValueError(f"this state_dict was saved from family {state.get('family')!r} with parameters "
                             f"{state.get('params')}, but the module is family {self.family!r} with parameters "
                             f"{mine['params']}; build the module with the saved family and parameters to load it")

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, strict: bool,
                              missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        tolerate_missing_extra_state(prefix, missing_keys)  # tensor-only states (weight files) load unchecked

    def _at_defaults(self) -> bool:
        """Whether every hyper-parameter but the granularity has its default (where claims are stated)."""
        skip = {"granularity"}
        return self.hparams.model_dump(exclude=skip) == self.Params().model_dump(exclude=skip)

    def extra_repr(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.hparams.model_dump().items())
        return (f"family={self.family!r}, {fields}" + (f", width={self.width}" if self.width is not None else "")
                + (f", dim={self.dim}" if self.dim != -1 else ""))


class PReLU(ParametricActivation):
    family = "prelu"
    Params = PReLUParams
    hparams: PReLUParams

    def _build(self) -> None:
        self.slope = self._parameter(torch.tensor(float(self.hparams.init_slope)))

    def function(self, x: Tensor) -> Tensor:
        return prelu(x, self.slope)

    def starts_near(self) -> InitClaim:
        a = float(self.hparams.init_slope)
        return InitClaim(f"leaky ReLU, slope {a:g}", lambda x: torch.where(x >= 0, x, a * x), 1e-6)


class Swish(ParametricActivation):
    family = "swish"
    Params = SwishParams
    hparams: SwishParams

    def _build(self) -> None:
        self.beta = self._parameter(torch.tensor(float(self.hparams.init_beta)))

    def function(self, x: Tensor) -> Tensor:
        return swish(x, self.beta)

    def starts_near(self) -> InitClaim:
        b = float(self.hparams.init_beta)
        return InitClaim(f"x sigmoid({b:g} x)", lambda x: x / (1 + torch.exp(-b * x)), 1e-6)


class Rational(ParametricActivation):
    family = "rational"
    Params = RationalParams
    hparams: RationalParams

    def _build(self) -> None:
        p, q = _rational_init(self.hparams.num_degree, self.hparams.den_degree)
        self.numerator = self._parameter(torch.tensor(p, dtype=torch.float32))
        self.denominator = self._parameter(torch.tensor(q, dtype=torch.float32).reshape(len(q)))

    def function(self, x: Tensor) -> Tensor:
        return rational(x, self.numerator, self.denominator)

    def starts_near(self) -> InitClaim | None:
        if not self._at_defaults():
            return None
        return InitClaim("leaky ReLU (0.01)", lambda x: torch.where(x > 0, x, 0.01 * x), 0.07)


class PiecewiseLinear(ParametricActivation):
    family = "pwl"
    Params = PiecewiseLinearParams
    hparams: PiecewiseLinearParams

    def _build(self) -> None:
        hp = self.hparams
        self.lo, self.hi = float(hp.lo), float(hp.hi)
        self.values = self._parameter(torch.relu(torch.linspace(hp.lo, hp.hi, hp.segments + 1)))

    def function(self, x: Tensor) -> Tensor:
        return pwl(x, self.values, self.lo, self.hi)

    def starts_near(self) -> InitClaim | None:
        return InitClaim("ReLU", torch.relu, 1e-5) if self._at_defaults() else None


class Maxout(ParametricActivation):
    family = "maxout"
    Params = MaxoutParams
    hparams: MaxoutParams

    def _build(self) -> None:
        # ReLU (pieces 0 and x) plus pieces t x - 1, t in (0, 1), below both everywhere at the start
        extra = [j / (self.hparams.pieces - 1) for j in range(1, self.hparams.pieces - 1)]
        self.slopes = self._parameter(torch.tensor([0.0, 1.0, *extra]))
        self.offsets = self._parameter(torch.tensor([0.0, 0.0] + [-1.0] * len(extra)))

    def function(self, x: Tensor) -> Tensor:
        return maxout(x, self.slopes, self.offsets)

    def starts_near(self) -> InitClaim:
        return InitClaim("ReLU", torch.relu, 1e-6)


class KernelActivation(ParametricActivation):
    family = "kernel"
    Params = KernelParams
    hparams: KernelParams

    dictionary: Tensor

    def _build(self) -> None:
        hp = self.hparams
        spacing = (hp.hi - hp.lo) / (hp.size - 1)
        self.gamma = 1.0 / (2.0 * spacing**2)
        self.register_buffer("dictionary", torch.linspace(hp.lo, hp.hi, hp.size))
        self.alpha = self._parameter(torch.tensor(_kernel_init(hp.size, hp.lo, hp.hi, self.gamma),
                                                  dtype=torch.float32))
        self.tails = self._parameter(torch.tensor([0.0, 1.0]))  # ELU-like: flat left, identity right

    def function(self, x: Tensor) -> Tensor:
        return kernel_activation(x, self.alpha, self.dictionary, self.gamma, self.tails)

    def starts_near(self) -> InitClaim | None:
        return InitClaim("ELU", F.elu, 0.13) if self._at_defaults() else None


class NeuralActivation(ParametricActivation):
    """Per layer: ``inner = nn.Linear(1, hidden)``, ``outer = nn.Linear(hidden, 1)``
    (re-drawn by ``init_parameters_`` with every ``nn.Linear``); per unit: the
    same draws for each unit, as ``inner_weight``, ``inner_bias``,
    ``outer_weight`` ``(d, hidden)`` and ``outer_bias`` ``(d,)``."""

    family = "neural"
    Params = NeuralParams
    hparams: NeuralParams

    def _build(self) -> None:
        h = self.hparams.hidden
        if self.granularity == "layer":
            self.inner = nn.Linear(1, h)
            self.outer = nn.Linear(h, 1)
            return
        assert self.width is not None
        self.inner_weight = nn.Parameter(torch.empty(self.width, h))
        self.inner_bias = nn.Parameter(torch.empty(self.width, h))
        self.outer_weight = nn.Parameter(torch.empty(self.width, h))
        self.outer_bias = nn.Parameter(torch.empty(self.width))
        self.draw_parameters_(None)

    def draw_parameters_(self, generator: torch.Generator | None) -> None:
        """Per unit: draw as ``nn.Linear(1, h)`` and ``nn.Linear(h, 1)`` do (U(-1, 1); U(-1/sqrt(h), 1/sqrt(h)))."""
        if self.granularity == "layer":
            return  # the two nn.Linear are drawn by init_parameters_ itself
        bound = 1.0 / math.sqrt(self.hparams.hidden)
        with torch.no_grad():
            for p, b in ((self.inner_weight, 1.0), (self.inner_bias, 1.0), (self.outer_weight, bound),
                         (self.outer_bias, bound)):
                nn.init.uniform_(p, -b, b, generator=generator)

    def function(self, x: Tensor) -> Tensor:
        if self.granularity == "layer":
            return x + self.outer(torch.tanh(self.inner(x.unsqueeze(-1)))).squeeze(-1)
        return neural(x, self.inner_weight, self.inner_bias, self.outer_weight, self.outer_bias)


# Max abs error on [-3, 3] of the initial spline against its `init` candidate, at the default grid and base
# (fits measured in float64: relu 0.134, tanh 0.005, identity 0.0034, elu 0.013, gelu 0.0098; stated with margin).
_SPLINE_TOLERANCE = {"silu": 1e-6, "identity": 0.005, "sigmoid": 0.005, "softplus": 0.005, "tanh": 0.01,
                     "sin": 0.01, "gelu": 0.015, "elu": 0.02, "relu": 0.14, "leaky_relu": 0.14}


class Spline(ParametricActivation):
    """KAN-style B-spline unit; see the module docstring for the formula and the behaviour outside the grid."""

    family = "spline"
    Params = SplineParams
    hparams: SplineParams

    knots: Tensor

    def _build(self) -> None:
        hp = self.hparams
        self.order = hp.order
        self.base = get_candidate(hp.base)
        self.register_buffer("knots", _spline_knots(hp.order, hp.grid_size, hp.lo, hp.hi))
        c = _spline_init(hp.order, hp.grid_size, hp.lo, hp.hi, hp.init, hp.base)
        self.coefficients = self._parameter(torch.tensor(c, dtype=torch.float32))
        self.base_weight = self._parameter(torch.tensor(1.0))
        self.spline_weight = self._parameter(torch.tensor(1.0))

    def function(self, x: Tensor) -> Tensor:
        return spline(x, self.coefficients, self.knots, self.order, self.base_weight, self.spline_weight, self.base)

    def __getstate__(self) -> dict[str, object]:
        """Pickle and deep-copy with the base candidate's name (in :attr:`hparams`), not its function: the function
        is re-resolved from the registry (a candidate registered as a lambda cannot be pickled itself)."""
        state = self.__dict__.copy()
        state.pop("base", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)
        self.base = get_candidate(self.hparams.base)

    def starts_near(self) -> InitClaim | None:
        hp = self.hparams
        if hp.init == hp.base:
            return InitClaim(hp.init, get_candidate(hp.init), 1e-6)
        default = SplineParams()
        grid = ("order", "grid_size", "lo", "hi", "base")
        if any(getattr(hp, f) != getattr(default, f) for f in grid) or hp.init not in _SPLINE_TOLERANCE:
            return None
        return InitClaim(hp.init, get_candidate(hp.init), _SPLINE_TOLERANCE[hp.init])


# --- registry -----------------------------------------------------------------------

_FAMILIES: dict[str, Callable[..., ParametricActivation]] = {}


def register_family(name: str, factory: Callable[..., ParametricActivation],
                    params: type[FamilyParams] | None = None) -> None:
    """Register a learnable family under ``name``; registering twice is an error.

    The name and its parameter class are recorded in :mod:`learnact.names`, which
    config validation reads (the built-ins are recorded there already).

    Args:
        name: Identifier used as ``ActivationConfig(kind=name)``.
        factory: Called as ``factory(width=d, **params)``; returns the module.
        params: The family's hyper-parameter class (default: ``factory.Params``,
            else :class:`FamilyParams`, granularity only).
    """
    if name in _FAMILIES or name in ("fixed", "gated"):
        raise ValueError(f"activation family {name!r} is already registered")
    spec = params if params is not None else getattr(factory, "Params", FamilyParams)
    if not (isinstance(spec, type) and issubclass(spec, FamilyParams)):
        raise TypeError(f"params of family {name!r} must be a FamilyParams subclass, got {spec!r}")
    names.register_family(name, spec)
    _FAMILIES[name] = factory


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown activation family {name!r}{did_you_mean(str(name), _FAMILIES)}; "
                      f"valid: {', '.join(sorted(_FAMILIES))}")


def get_family(name: str) -> Callable[..., ParametricActivation]:
    """The factory of a family, called as ``factory(width=d, **params)``; unknown names list the valid ones."""
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise _unknown(name) from None


def family_params_model(name: str) -> type[FamilyParams]:
    """The hyper-parameter class of a family (fields, defaults, descriptions, checks)."""
    if name not in _FAMILIES:
        raise _unknown(name)
    return names.family_params_model(name)


def list_families() -> list[str]:
    """Names of the learnable families, sorted."""
    return sorted(_FAMILIES)


for _cls in (PReLU, Swish, Rational, PiecewiseLinear, Maxout, KernelActivation, NeuralActivation, Spline):
    register_family(_cls.family, _cls)
