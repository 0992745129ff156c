"""Learnable-family activations as segments of a stack.

A family segment is a run of stack members whose activation in a layer is the
same family module (same class, hyper-parameters and buffers; see
:func:`module_spec`), each member with its own parameter values: rows
``(n, *shape)`` of the stack's flat parameter buffer, so Adam and weight decay
treat them as every other parameter. :class:`FamilyOps` computes such a
segment's activation for all its members at once and its backward pass, in
one of four ways (*strategies*):

- ``"native"``: a derived pass (below) whose costly part runs in the native
  library (:mod:`.native`, :func:`register_native`): the same IEEE
  operations per element in the same order, fused into loops. Registered for
  ``kernel``: its dictionary terms in two C++ loops around ATen's own exp,
  the sums over the dictionary in the order ATen's sum adds (about a third of
  the Python pass's time); the cubic ``spline`` with a base that has a
  native candidate code (the element-wise part of its derived pass in one
  loop); ``rational`` (likewise, its powers above x^3 by ATen's pow and
  its sums over the coefficients in ATen's order); ``maxout``'s backward; and
  ``pwl`` with per-layer values.
  Tried first where the library is loaded.
- ``"derived"``: a forward pass and a hand-derived backward pass registered
  for the family (:func:`register_derived`): the operations autograd performs
  for one member, on the whole segment, without autograd's per-node cost.
  Registered here for ``prelu``, ``swish``, ``maxout``, ``pwl`` (per-layer
  values, read by indexing: the backward accumulates into each member's own
  rows in the reference's order) and ``neural`` (its per-layer form, two
  ``nn.Linear`` whose products the stack computes with the same kernels as a
  lone model, :mod:`._products`) and ``kernel`` (its ``(n, b, d, D)``
  temporaries, one per dictionary term, are the cost: computed in place
  where autograd allocates new ones, it takes about 60% of the broadcast
  strategy's time), ``rational`` (autograd's graph of its stacked powers,
  followed node by node: its gradient of ``x`` sums the powers' terms from
  the highest down, the order in which the engine runs those nodes) and
  ``spline`` of order 3 (the default; the B-spline recursion written out and
  its backward taken in the engine's order, without the engine's per-node
  cost; other orders broadcast).
- ``"broadcast"``: the family module's own ``forward``, its parameters
  replaced by the members' values with singleton axes inserted so they
  broadcast against the ``(n, b, d)`` pre-activations (a per-layer parameter
  of shape ``s`` as ``(n, 1, 1, *s)``, a per-unit one, unit axis first, as
  ``(n, 1, *s)``); backward: autograd on that segment alone.
- ``"vmap"``: ``torch.func.vmap`` of ``torch.func.functional_call``: the
  module's forward with a member axis on its parameters, whatever their
  shapes; backward: autograd on that segment alone. It works for any
  ``nn.Module`` whose forward can run under ``vmap`` (no in-place writes to
  its parameters, no ``.item()``, no Python branches on tensor values).

The first strategy whose results (output, input gradient and parameter
gradients) equal those of the reference computation bit for bit on a probe
(random parameters and inputs, three members) is used: the module's own
forward and autograd, one member at a time, as :func:`~.loop.fit` runs it
(:func:`choose`). The choice is made once per family configuration and width
in a process. If no strategy is bit-identical (for example a width whose
per-member slices do not fill whole vector chunks of the element-wise
kernels), ``"vmap"`` is used and :attr:`FamilyOps.exact` is False: results
then agree with the reference to rounding.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._products import input_grad, linear, weight_grad_
from ._torch_private import set_module_tensor, vjp

__all__ = ["FamilyOps", "Choice", "NATIVE_STEP_FAMILIES", "NativeStepArgs", "choose", "in_native_step", "module_spec",
           "register_derived", "register_native", "STRATEGIES"]

STRATEGIES = ("native", "derived", "broadcast", "vmap")

#: ``forward(z, params, module) -> (out, saved)`` and ``backward(saved, grad) -> (grad_z, param_grads)``;
#: ``params`` and ``param_grads`` map parameter names to tensors broadcast against ``z: (n, b, d)``.
DerivedForward = Callable[[Tensor, dict[str, Tensor], nn.Module], tuple[Tensor, Any]]
DerivedBackward = Callable[[Any, Tensor], tuple[Tensor, dict[str, Tensor]]]

_DERIVED: dict[str, tuple[DerivedForward, DerivedBackward]] = {}
_NATIVE: dict[str, tuple[DerivedForward, DerivedBackward, str]] = {}


def register_derived(family: str, forward: DerivedForward, backward: DerivedBackward) -> None:
    """Register a hand-derived stacked forward and backward pass for ``family``.

    They are used only where they reproduce the family module's forward and
    autograd's backward bit for bit on a probe (:func:`choose`); otherwise
    the segment falls back to autograd, so a registration can never make
    results wrong, only faster.
    """
    _DERIVED[family] = (forward, backward)


def register_native(family: str, forward: DerivedForward, backward: DerivedBackward, feature: str) -> None:
    """Register a derived pass for ``family`` that calls the native library's ``feature`` (:func:`.native.feature`).

    Tried before the Python derived pass where the library is loaded and
    ``feature`` passed its calibration, and used only where it reproduces
    the reference bit for bit on the probe (:func:`choose`), like a derived pass.
    """
    _NATIVE[family] = (forward, backward, feature)


def _native_ready(feature: str) -> bool:
    from . import native  # here: native.py imports this package's segment code

    return native.feature(feature)


def _plain(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"tensor{tuple(value.shape)}:{value.dtype}:{_digest(value)}"
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(_plain(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_plain(v)}" for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))) + "}"
    return repr(value)


def _digest(t: Tensor) -> str:
    return hashlib.sha1(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()).hexdigest()[:16]


def module_spec(module: nn.Module) -> str:
    """Everything about a family module except its parameters' values, as one string.

    Class, plain attributes (hyper-parameters such as ``lo``, ``order``),
    parameter names and shapes, buffer names, shapes and values, for the module
    and its submodules. Members whose modules have equal specs compute the same
    function of (input, parameter values): they can share a segment.
    """
    parts = [f"{type(module).__module__}.{type(module).__qualname__}"]
    for prefix, mod in module.named_modules():
        attrs = sorted((k, _plain(v)) for k, v in vars(mod).items() if not k.startswith("_") and k != "training")
        parts.append(f"m:{prefix}:{type(mod).__qualname__}:{attrs}")
    for name, p in module.named_parameters():
        parts.append(f"p:{name}:{tuple(p.shape)}:{p.dtype}")
    for name, b in module.named_buffers():
        parts.append(f"b:{name}:{_plain(b)}")
    return "|".join(parts)


@dataclass(frozen=True)
class Choice:
    """How a family configuration is computed in a stack (see :func:`choose`).

    Attributes:
        strategy: ``"derived"``, ``"broadcast"`` or ``"vmap"``.
        per_unit: Per parameter: whether its first axis is the unit axis
            (broadcast as ``(n, 1, *shape)``) or not (``(n, 1, 1, *shape)``);
            unused by ``"vmap"``.
        exact: Whether the probe found it bit-identical to the reference.
    """

    strategy: str
    per_unit: tuple[bool, ...]
    exact: bool


#: The families the native step (``native_step.cpp``: ``Family``) runs inside its C++ training step: per family,
#: its code there, the strategy whose pass the C++ repeats call for call (the stack trains in the native step only
#: where every family layer uses that strategy) and its parameters in the order the C++ reads them.
NATIVE_STEP_FAMILIES: dict[str, tuple[int, str, tuple[str, ...]]] = {
    "kernel": (0, "native", ("alpha", "tails")),
    "spline": (1, "native", ("coefficients", "base_weight", "spline_weight")),
    "rational": (2, "native", ("numerator", "denominator")),
    "pwl": (3, "native", ("values",)),
    "prelu": (4, "derived", ("slope",)),
    "swish": (5, "derived", ("beta",)),
    "maxout": (6, "native", ("slopes", "offsets")),
    "neural": (7, "derived", ("inner.weight", "inner.bias", "outer.weight", "outer.bias")),
}


def _native_step_runs(family: str, strategy: str, names: Sequence[str]) -> bool:
    entry = NATIVE_STEP_FAMILIES.get(family)
    return entry is not None and entry[1] == strategy and sorted(entry[2]) == sorted(names)


def in_native_step(module: nn.Module, width: int) -> bool:
    """Whether the native step runs ``module`` (a family module) in a layer of ``width`` units: its family is in
    :data:`NATIVE_STEP_FAMILIES` and :func:`choose` picks the pass the C++ repeats (:attr:`FamilyOps.in_native_step`).
    """
    family = str(getattr(module, "family", "") or type(module).__name__)
    return _native_step_runs(family, choose(module, width).strategy, [name for name, _ in module.named_parameters()])


@dataclass(frozen=True)
class NativeStepArgs:
    """One family layer's arguments to the native step (:meth:`FamilyOps.native_step_args`).

    Attributes:
        code: The family's code (:data:`NATIVE_STEP_FAMILIES`).
        params: The members' parameters, broadcast as the pass reads them, in the C++ order.
        grads: Their gradient views ``(n, *shape)``, same order.
        hp: Float hyper-parameters (float64, 1-D): the kernel's ``-gamma`` and term floor, pwl's left end and
            knot spacing.
        extra: Buffers: the kernel's dictionary, the spline's knots.
        ints: The spline's base candidate code.
    """

    code: int
    params: list[Tensor]
    grads: list[Tensor]
    hp: Tensor
    extra: list[Tensor]
    ints: list[int]


class FamilyOps:
    """One family segment's activation in one layer: forward and backward for all its members.

    Args:
        module: A member's family module (the template: hyper-parameters and
            buffers; its parameter values are not used).
        choice: The strategy (:func:`choose`).

    Shape:
        - z: ``(n, b, d)`` pre-activations; params: per parameter ``(n, *shape)``
        - output: ``(n, b, d)``
    """

    def __init__(self, module: nn.Module, choice: Choice) -> None:
        self.family = str(getattr(module, "family", "") or type(module).__name__)
        self.names = tuple(name for name, _ in module.named_parameters())
        self.choice = choice
        self.strategy = choice.strategy
        self.exact = choice.exact
        # a private copy: the broadcast strategy writes the members' values into its parameter slots
        self._module = copy.deepcopy(module)
        for p in self._module.parameters():
            p.requires_grad_(False)
        self._derived: tuple[DerivedForward, DerivedBackward] | None = None
        if self.strategy == "derived":
            self._derived = _DERIVED.get(self.family)
        elif self.strategy == "native":
            self._derived = _NATIVE[self.family][:2]
        if self.strategy == "vmap":
            from torch.func import functional_call, vmap

            template, names = self._module, self.names

            def one(params: Sequence[Tensor], x: Tensor) -> Tensor:
                return functional_call(template, dict(zip(names, params, strict=True)), (x,))

            self._vmapped = vmap(one)

    def _broadcast(self, params: Sequence[Tensor]) -> list[Tensor]:
        out = []
        for p, unit in zip(params, self.choice.per_unit, strict=True):
            n, shape = p.shape[0], p.shape[1:]
            out.append(p.view(n, 1, *shape) if unit else p.view(n, 1, 1, *shape))
        return out

    def _call(self, z: Tensor, params: Sequence[Tensor]) -> Tensor:
        if self.strategy == "vmap":
            return self._vmapped(list(params), z)
        module = self._module
        for name, value in zip(self.names, self._broadcast(params), strict=True):
            set_module_tensor(module, name, value)
        return module(z)

    @property
    def in_native_step(self) -> bool:
        """Whether the native step (:mod:`.native`) runs this layer: its family is in
        :data:`NATIVE_STEP_FAMILIES` and the pass chosen here is the one the C++ repeats."""
        return _native_step_runs(self.family, self.strategy, self.names)

    def native_step_args(self, params: Sequence[Tensor], grads: Sequence[Tensor]) -> NativeStepArgs:
        """What the native step reads for this layer (check :attr:`in_native_step` first).

        Args:
            params: The members' parameters, in the module's order (views of the stack's buffer).
            grads: Their gradient views, likewise.
        """
        code, _, order = NATIVE_STEP_FAMILIES[self.family]
        broadcast = dict(zip(self.names, self._broadcast(params), strict=True))
        by_name = dict(zip(self.names, grads, strict=True))
        module = self._module
        hp: list[float] = []
        ints: list[int] = []
        extra: list[Tensor] = []
        if self.family == "kernel":  # as _kernel_native_forward reads them
            hp = [-float(module.gamma), _TERM_FLOOR]  # type: ignore[arg-type]
            extra = [module.dictionary]  # type: ignore[list-item]
        elif self.family == "spline":  # as _spline_native_forward
            from . import native

            ints = [int(native.candidate_code(str(module.hparams.base)))]  # type: ignore[union-attr,arg-type]
            extra = [module.knots]  # type: ignore[list-item]
        elif self.family == "pwl":  # as _pwl_native_forward
            hp = list(_pwl_grid(module, broadcast["values"].shape[-1] - 1))
        return NativeStepArgs(code, [broadcast[n] for n in order], [by_name[n] for n in order],
                              torch.tensor(hp, dtype=torch.float64), extra, ints)

    def forward(self, z: Tensor, params: Sequence[Tensor], train: bool) -> tuple[Tensor, Any]:
        """The members' activations, and (``train``) what :meth:`backward` needs.

        Args:
            z: Pre-activations.
            params: The members' parameters, in the module's order.
            train: Record for :meth:`backward`.
        """
        if self._derived is not None:
            named = dict(zip(self.names, self._broadcast(params), strict=True))
            out, saved = self._derived[0](z, named, self._module)
            return out, (saved if train else None)
        if not train:
            with torch.no_grad():
                return self._call(z, params), None
        with torch.enable_grad():
            leaf = z.detach().requires_grad_(True)
            leaves = [p.detach().requires_grad_(True) for p in params]
            out = self._call(leaf, leaves)
        return out.detach(), (out, leaf, leaves)

    def backward(self, saved: Any, grad: Tensor, grads: Sequence[Tensor]) -> Tensor:
        """The gradient of the pre-activations; writes each parameter's gradient into ``grads``.

        Args:
            saved: What :meth:`forward` returned with ``train=True``, used by one backward pass only (a
                derived pass may reuse its buffers: the kernel family's doubles ``diff`` in place).
            grad: Gradient of the loss with respect to the output.
            grads: Per parameter, the members' gradient rows ``(n, *shape)`` to fill.
        """
        if self._derived is not None:
            gz, named = self._derived[1](saved, grad)
            for name, out in zip(self.names, grads, strict=True):
                out.copy_(named[name].view(out.shape))
            return gz
        out, leaf, leaves = saved
        with torch.enable_grad():
            got = vjp(out, [leaf, *leaves], grad)
        for g, dst in zip(got[1:], grads, strict=True):
            if g is None:  # a parameter the forward does not read
                dst.zero_()
            else:
                dst.copy_(g.view(dst.shape))
        g_leaf = got[0]
        return g_leaf if g_leaf is not None else torch.zeros_like(leaf)


# --- choosing a strategy --------------------------------------------------------------------------

_CHOICES: dict[tuple[str, int, bool], Choice] = {}
_PROBE_MEMBERS = 3
#: The probe's batch sizes: a whole number of vector chunks per member, and ragged ones (a last partial batch, a
#: validation set), at which a member's values reach the segment as padded rows (:func:`.stacked.member_rows`)
#: and a pass can add or chunk otherwise (the native spline pass was inexact at widths 6 and 12 there only).
_PROBE_BATCHES = (32, 7, 97)


def _reference(module: nn.Module, params: list[Tensor], z: Tensor, grad: Tensor) -> list[Tensor]:
    """Output, input gradient and parameter gradients, one member at a time, as the reference loop gets them."""
    outs: list[list[Tensor]] = []
    for k in range(z.shape[0]):
        mine = copy.deepcopy(module)
        with torch.no_grad():
            for p, value in zip(mine.parameters(), params, strict=True):
                p.copy_(value[k])
        x = z[k].clone().requires_grad_(True)
        y = mine(x)
        got = vjp(y, [x, *mine.parameters()], grad[k])
        outs.append([y.detach(), *(g if g is not None else torch.zeros_like(p)
                                   for g, p in zip(got, [x, *mine.parameters()], strict=True))])
    return [torch.stack(parts) for parts in zip(*outs, strict=True)]


def _identical(a: Tensor, b: Tensor) -> bool:
    """``torch.equal`` with NaN equal to NaN: a module whose parameters overflow (a PReLU slope of 1e300 is inf
    in float32) gives NaN in the probe, and every strategy that reproduces those NaNs where the module has
    them is as exact as on finite values (the run then diverges, as with the sequential engine)."""
    if a.shape != b.shape:
        return False
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
    return torch.equal(nan_a, nan_b) and torch.equal(a[~nan_a], b[~nan_b])


def _try(module: nn.Module, choice: Choice, params: list[Tensor], z: Tensor, grad: Tensor,
         want: list[Tensor]) -> bool | None:
    """Whether ``choice`` reproduces ``want`` bit for bit (True), to rounding (False), or fails (None)."""
    from .stacked import member_rows  # (stacked imports this module through segments)

    try:
        ops = FamilyOps(module, choice)
        grads = [torch.empty_like(p) for p in params]
        out, saved = ops.forward(member_rows(z.clone()), params, train=True)  # laid out as a stack's forward has it
        evaluated, _ = ops.forward(member_rows(z.clone()), params, train=False)
        gz = ops.backward(saved, grad.clone(), grads)
        got = [out, gz, *grads]
    except Exception:  # noqa: BLE001 - a strategy that cannot run this module is simply not used
        return None
    if any(a.shape != b.shape for a, b in zip(got, want, strict=True)) or not _identical(evaluated, out):
        return None
    if all(_identical(a, b) for a, b in zip(got, want, strict=True)):
        return True
    close = all(torch.allclose(a, b, rtol=1e-4, atol=1e-6, equal_nan=True) for a, b in zip(got, want, strict=True))
    return False if close else None


def choose(module: nn.Module, width: int) -> Choice:
    """The strategy for ``module`` (a family module) in a layer of ``width`` units, chosen once per process.

    Each strategy runs on a probe (three members, parameters drawn around
    ``module``'s, batches of :data:`_PROBE_BATCHES` random pre-activations)
    and is compared with the reference computation; it is exact only where it
    is exact at every batch size. See the module docstring for the order.

    Raises:
        ValueError: No strategy reproduces the module even to rounding (its
            forward cannot run with a member axis).
    """
    family = str(getattr(module, "family", "") or type(module).__name__)
    native = family in _NATIVE and _native_ready(_NATIVE[family][2])
    key = (module_spec(module), int(width), native)
    found = _CHOICES.get(key)
    if found is not None:
        return found
    gen = torch.Generator().manual_seed(12345)
    base = [p.detach() for p in module.parameters()]
    params = [b.unsqueeze(0) + 0.05 * torch.randn(_PROBE_MEMBERS, *b.shape, generator=gen) for b in base]
    probes = []
    for batch in _PROBE_BATCHES:
        z = 2 * torch.randn(_PROBE_MEMBERS, batch, width, generator=gen)
        grad = torch.randn(_PROBE_MEMBERS, batch, width, generator=gen)
        probes.append((z, grad, _reference(module, params, z, grad)))
    unit_first = str(getattr(module, "granularity", "layer")) == "unit"
    layouts = list(dict.fromkeys([
        tuple(unit_first and b.dim() > 0 and b.shape[0] == width for b in base),
        tuple(False for _ in base),
        tuple(b.dim() > 0 and b.shape[0] == width for b in base),
    ]))
    trials = [Choice("native", layout, True) for layout in layouts if native]
    trials += [Choice("derived", layout, True) for layout in layouts if family in _DERIVED]
    trials += [Choice("broadcast", layout, True) for layout in layouts]
    trials.append(Choice("vmap", layouts[0], True))
    fallback: Choice | None = None
    for trial in trials:
        verdicts = [_try(module, trial, params, z, grad, want) for z, grad, want in probes]
        verdict = None if None in verdicts else all(verdicts)
        if verdict is True:
            _CHOICES[key] = trial
            return trial
        if verdict is False and fallback is None:
            fallback = Choice(trial.strategy, trial.per_unit, False)
    if fallback is None:
        raise ValueError(f"the {family!r} activation cannot be computed with a member axis (its forward fails "
                         "under broadcasting and torch.func.vmap, or disagrees with the module); the stacked "
                         "engine needs a forward without in-place writes to parameters, .item() or branches on "
                         "tensor values")
    _CHOICES[key] = fallback
    return fallback


# --- hand-derived families ------------------------------------------------------------------------
# Each performs, member by member, the operations autograd performs for the family's pure function
# (learnact.model.activations.families), in its order: the forward's operations, then per node of the
# backward graph its derivatives.yaml formula; a parameter broadcast against the input gets the gradient
# reduced with sum_to_size, as autograd's engine reduces it.

_threshold_backward = torch.ops.aten.threshold_backward


def _prelu_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # relu(x) - slope * relu(-x)
    slope = p["slope"]
    a = torch.relu(z)
    c = torch.relu(torch.neg(z))
    return torch.sub(a, torch.mul(slope, c)), (a, c, slope)


def _prelu_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    a, c, slope = saved
    gm = torch.neg(grad)  # SubBackward: the subtrahend's gradient
    g_slope = torch.mul(gm, c).sum_to_size(slope.shape)
    gc = torch.mul(gm, slope)
    gz = _threshold_backward(grad, a, 0) + torch.neg(_threshold_backward(gc, c, 0))
    return gz, {"slope": g_slope}


def _swish_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # x * sigmoid(beta * x)
    from .stacked import member_rows  # (stacked imports this module through segments)

    beta = p["beta"]
    # the product is a fresh contiguous stack: sigmoid's chunks would cross members at ragged widths
    s = torch.sigmoid(member_rows(torch.mul(beta, z)))
    return torch.mul(z, s), (z, s, beta)


def _swish_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    z, s, beta = saved
    gz = torch.mul(grad, s)
    gu = torch.ops.aten.sigmoid_backward(torch.mul(grad, z), s)
    g_beta = torch.mul(gu, z).sum_to_size(beta.shape)
    return gz + torch.mul(gu, beta), {"beta": g_beta}


def _maxout_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # (x.unsqueeze(-1) * slopes + offsets).amax(-1)
    slopes, offsets = p["slopes"], p["offsets"]
    xu = z.unsqueeze(-1)
    q = torch.add(torch.mul(xu, slopes), offsets)
    out = q.amax(dim=-1)
    return out, (xu, q, out, slopes, offsets)


def _maxout_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    xu, q, out, slopes, offsets = saved
    mask = out.unsqueeze(-1) == q  # amax's backward: the gradient shared among the maxima
    gq = torch.mul(torch.div(grad.unsqueeze(-1), mask.sum(-1, keepdim=True)), mask)
    g_offsets = gq.sum_to_size(offsets.shape)
    g_slopes = torch.mul(gq, xu).sum_to_size(slopes.shape)
    gz = torch.mul(gq, slopes).sum_to_size(xu.shape).squeeze(-1)  # MulBackward, then UnsqueezeBackward
    return gz, {"slopes": g_slopes, "offsets": g_offsets}


def _pwl_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # values[idx] + t * (values[idx + 1] - values[idx]) with idx the knot interval, t the position in it;
    # each member's values are its own rows of one flat table
    n = z.shape[0]
    size = p["values"].shape[-1]
    table = p["values"].reshape(n * size)
    k = size - 1
    lo, step = _pwl_grid(module, k)
    idx = ((z - lo) / step).clamp(0, k - 1e-6).floor().long().clamp(0, k - 1)
    at = idx + (torch.arange(n) * size).view(n, *([1] * (z.dim() - 1)))
    left = table[at]
    right = table[at + 1]
    t = (z - lo) / step - idx.to(z.dtype)
    r = right - left
    return left + t * r, (at, t, r, step, n * size)


def _pwl_grid(module: nn.Module, k: int) -> tuple[float, float]:
    """The left end and the knots' spacing of a pwl module with ``k`` segments (Python floats, as pwl uses)."""
    lo, hi = float(module.lo), float(module.hi)  # type: ignore[arg-type]
    return lo, (hi - lo) / k


def _pwl_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    at, t, r, step, numel = saved
    g_r = grad * t
    g_left = grad + torch.neg(g_r)  # from the sum and from right - left
    # IndexBackward: index_put with accumulate into zeros, element by element in order (each member its own rows)
    g_values = (torch.zeros(numel, dtype=grad.dtype).index_put_((at,), g_left, accumulate=True)
                + torch.zeros(numel, dtype=grad.dtype).index_put_((at + 1,), g_r, accumulate=True))
    return (grad * r) / step, {"values": g_values}


def _neural_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # x + outer(tanh(inner(x.unsqueeze(-1)))).squeeze(-1) with inner = Linear(1, h), outer = Linear(h, 1):
    # F.linear on a contiguous 3-D input is addmm on its (b * d, features) view, which linear() reproduces
    n = z.shape[0]
    w1, b1 = p["inner.weight"].reshape(n, -1, 1), p["inner.bias"].reshape(n, -1)
    w2, b2 = p["outer.weight"].reshape(n, 1, -1), p["outer.bias"].reshape(n, 1)
    xu = z.reshape(n, -1, 1)
    t = torch.tanh(linear(xu, w1, b1))
    return torch.add(z, linear(t, w2, b2).view(z.shape)), (xu, t, w1, w2, z.shape)


def _neural_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    xu, t, w1, w2, shape = saved
    n = grad.shape[0]
    g = grad.reshape(n, -1, 1)
    g_w2, g_w1 = torch.empty_like(w2), torch.empty_like(w1)
    weight_grad_(g, t, g_w2)  # the Linears' backward, as stacked_backward derives it for the backbone's
    g_b2 = torch.sum(g, 1)
    ga = torch.ops.aten.tanh_backward(input_grad(g, w2), t)
    weight_grad_(ga, xu, g_w1)
    g_b1 = torch.sum(ga, 1)
    gz = grad + input_grad(ga, w1).view(shape)
    return gz, {"inner.weight": g_w1, "inner.bias": g_b1, "outer.weight": g_w2, "outer.bias": g_b2}


def _rational_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # sum_j p_j x^j / (1 + |sum_j q_j x^j|) over the stacked powers x^0 .. x^max(m, n), as families.rational
    num, den = p["numerator"], p["denominator"]
    m, n = num.shape[-1] - 1, den.shape[-1]
    degree = max(m, n)
    xp = torch.stack([z**j for j in range(degree + 1)], dim=-1)
    top = (xp[..., : m + 1] * num).sum(-1)
    q = (xp[..., 1 : n + 1] * den).sum(-1)
    w = 1 + q.abs()
    return top / w, (z, xp, top, q, w, num, den, m, n, degree)


def _rational_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    z, xp, top, q, w, num, den, m, n, degree = saved
    # DivBackward0: grad / w for the numerator sum, -grad ((top / w) / w) for the denominator's 1 + |q|
    g_top = grad / w
    g_w = torch.neg(grad) * ((top / w) / w)
    g_q = (g_w * q.sgn()).unsqueeze(-1)  # AddBackward1 passes it on, AbsBackward0: grad sgn(q); SumBackward: expanded
    g_den = (g_q * xp[..., 1 : n + 1]).sum_to_size(den.shape)
    from_q = torch.zeros_like(xp)
    from_q[..., 1 : n + 1] = g_q * den  # SliceBackward of the denominator's powers (this branch runs first)
    g_topx = g_top.unsqueeze(-1)
    g_num = (g_topx * xp[..., : m + 1]).sum_to_size(num.shape)
    from_top = torch.zeros_like(xp)
    from_top[..., : m + 1] = g_topx * num
    g_xp = from_q + from_top
    # StackBackward0, then each PowBackward0 (grad j x^(j - 1); zeros for j = 0), the last power's first;
    # x^(j - 1) is the forward's (the same pow kernel on the same input)
    parts, powers = g_xp.unbind(-1), xp.unbind(-1)
    gz = parts[degree] * (powers[degree - 1] * degree) if degree > 0 else torch.zeros_like(z)
    for j in range(degree - 1, 0, -1):
        gz = gz + parts[j] * (powers[j - 1] * j)
    if degree > 0:
        gz = gz + torch.zeros_like(z)
    return gz, {"numerator": g_num, "denominator": g_den}


def _spline_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # families.spline with local_bsplines written out for order 3 (the default; other orders raise here, so the
    # probe keeps the broadcast strategy for them): the same operations in the same order, each kept for the
    # backward pass
    from ..model.activations import candidate_derivative

    order = int(module.order)  # type: ignore[arg-type]
    if order != 3:
        raise NotImplementedError("the derived spline pass is written for order 3")
    knots: Tensor = module.knots  # type: ignore[assignment]
    coefficients, base_weight, spline_weight = p["coefficients"], p["base_weight"], p["spline_weight"]
    n_knots = knots.shape[-1]
    h = (knots[-1] - knots[0]) / (n_knots - 1)
    s = (z - knots[0]) / h
    cell = s.floor()
    t = s - cell
    start = torch.nan_to_num(cell, nan=-1.0).clamp(-1.0, n_knots - 1.0).long() + 1
    rest = 1.0 - t
    a = t + 1  # order 2: v1 = (t + 1) rest + (2 - t) t, v0 = rest rest, v2 = t t
    cc = 2 - t
    e = a * rest + cc * t
    f = rest * rest
    g = t * t
    hh = t + 2  # order 3
    j = 2 - t
    el = hh * f + j * e
    m = t + 1
    o = 3 - t
    q = m * e + o * g
    r = rest * f
    ss = t * g
    padded = F.pad(coefficients * (1.0 / math.factorial(order)), (order + 1, order + 1))
    width = padded.shape[-1]
    rows = torch.arange(0, padded[..., 0].numel() * width, width).view(padded.shape[:-1])
    index = ((rows + start).unsqueeze(-1) + torch.arange(order + 1)).reshape(-1)
    c0, c1, c2, c3 = padded.reshape(-1).index_select(0, index).view(*start.shape, order + 1).unbind(-1)
    total = r * c0
    total = total + el * c1
    total = total + q * c2
    total = total + ss * c3
    base: Callable[[Tensor], Tensor] = module.base  # type: ignore[assignment]
    bx = base(z)
    out = base_weight * bx + spline_weight * total
    saved = (z, t, rest, a, cc, e, f, g, hh, j, m, o, r, el, q, ss, c0, c1, c2, c3, h, total, bx, base,
             candidate_derivative(base), base_weight, spline_weight, coefficients.shape, padded.shape, index, order)
    return out, saved


def _spline_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    # autograd's graph of _spline_forward, node by node in the order the engine runs it (the highest sequence
    # number among the ready nodes first): the products with the coefficients' window from the last term down,
    # the window's gradient, then the recursion's nodes from the last created; a tensor used by several nodes
    # sums their gradients in that order
    from .stacked_backward import candidate_backward

    (z, t, rest, a, cc, e, f, g, hh, j, m, o, r, el, q, ss, c0, c1, c2, c3, h, total, bx, base, derivative,
     base_weight, spline_weight, c_shape, p_shape, index, order) = saved
    g_total = grad * spline_weight
    g_sw = (grad * total).sum_to_size(spline_weight.shape)
    g_bw = (grad * bx).sum_to_size(base_weight.shape)
    from_base = candidate_backward(base, derivative, z, bx, grad * base_weight)
    g_ss, g_q, g_el, g_r = g_total * c3, g_total * c2, g_total * c1, g_total * c0
    window = torch.stack([g_total * r, g_total * el, g_total * q, g_total * ss], dim=-1)
    flat = torch.zeros(math.prod(p_shape), dtype=grad.dtype).index_add_(0, index, window.reshape(-1))
    size = c_shape[-1]
    g_coefficients = flat.view(p_shape)[..., order + 1: order + 1 + size] * (1.0 / math.factorial(order))
    g_t = g_ss * g  # ss = t g
    g_g = g_ss * t
    g_rest = g_r * f  # r = rest f
    g_f = g_r * rest
    g_g = g_g + g_q * o  # q = m e + o g
    g_t = g_t - g_q * g  # o = 3 - t
    g_e = g_q * m
    g_t = g_t + g_q * e  # m = t + 1
    g_e = g_e + g_el * j  # el = hh f + j e
    g_t = g_t - g_el * e  # j = 2 - t
    g_f = g_f + g_el * hh
    g_t = g_t + g_el * f  # hh = t + 2
    g_tt = g_g * t  # g = t t: both factors
    g_t = g_t + g_tt
    g_t = g_t + g_tt
    g_rr = g_f * rest  # f = rest rest: both factors
    g_rest = g_rest + g_rr
    g_rest = g_rest + g_rr
    g_t = g_t + g_e * cc  # e = a rest + cc t
    g_t = g_t - g_e * t  # cc = 2 - t
    g_rest = g_rest + g_e * a
    g_t = g_t + g_e * rest  # a = t + 1
    g_t = g_t - g_rest  # rest = 1 - t
    g_s = g_t + 0.0  # t = s - floor(s): the floor's zero gradient added after
    gz = from_base + g_s / h
    return gz, {"coefficients": g_coefficients, "base_weight": g_bw, "spline_weight": g_sw}


def _rational_native_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # _rational_forward from C++ (native_step.cpp: rational_forward): each element's operations in one loop, the
    # powers above x^3 by ATen's pow, the sums over the coefficients in ATen's order
    num, den = p["numerator"], p["denominator"]
    out, *saved = torch.ops.learnact_native.rational_forward(z, num, den)
    return out, (saved, num, den)


def _rational_native_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    (z, top, q, w, *powers), num, den = saved
    gz, g_num, g_den = torch.ops.learnact_native.rational_backward(grad, z, top, q, w, num, den, powers)
    return gz, {"numerator": g_num, "denominator": g_den}


def _spline_native_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # _spline_forward from C++ (native_step.cpp: spline3_forward): its element-wise part in one loop, each
    # element's operations in the pass's order, the base by its candidate code
    from . import native

    code = native.candidate_code(str(module.hparams.base))  # type: ignore[union-attr]
    if int(module.order) != 3 or code is None:  # type: ignore[arg-type]
        raise NotImplementedError("the native spline pass is for order 3 and a base with a native candidate code")
    coefficients, base_weight, spline_weight = p["coefficients"], p["base_weight"], p["spline_weight"]
    out, *saved = torch.ops.learnact_native.spline3_forward(z, module.knots, coefficients, base_weight,
                                                            spline_weight, code)
    padded_shape = [*coefficients.shape[:-1], coefficients.shape[-1] + 8]
    return out, (z, saved, base_weight, spline_weight, code, list(coefficients.shape), padded_shape)


def _spline_native_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    gz, g_coefficients, g_bw, g_sw = torch.ops.learnact_native.spline3_backward(grad, *saved)
    return gz, {"coefficients": g_coefficients, "base_weight": g_bw, "spline_weight": g_sw}


register_derived("prelu", _prelu_forward, _prelu_backward)
register_derived("swish", _swish_forward, _swish_backward)
register_derived("maxout", _maxout_forward, _maxout_backward)
register_derived("neural", _neural_forward, _neural_backward)
register_derived("pwl", _pwl_forward, _pwl_backward)
register_derived("rational", _rational_forward, _rational_backward)
register_derived("spline", _spline_forward, _spline_backward)


_TERM_FLOOR = -69.0
"""Kernel terms ``exp(a)`` with ``a`` below this (``exp(-69) = 1.0e-30``) are 0 in the stacked segment."""


def _small_terms_zero_exp_(arg: Tensor) -> Tensor:
    """``exp(arg)`` in place, with 0 where ``arg < _TERM_FLOOR``.

    A subnormal exponential (below 1.2e-38 in float32, or one that
    underflows to 0) takes the CPU a slow path about a hundred times slower
    than a normal one, and products with subnormal results are slow too: in
    the kernel family's segment, where about 4% of the terms are subnormal
    and more become so in the backward products, they were more than half of
    its time. Zeroing every term below 1e-30 avoids both; see
    :func:`_kernel_forward` for why the results do not change. The zeroing
    multiplies by a float mask: a comparison into a bool tensor and
    ``masked_fill_`` with it cost ten to twenty float operations each here
    (about 0.4 of the segment's 1 ms per step at one member).
    """
    keep = torch.ge(arg, _TERM_FLOOR, out=torch.empty_like(arg))  # 1.0 or 0.0 (NaN: 0, and NaN * 0 is NaN)
    return arg.clamp_min_(_TERM_FLOOR).exp_().mul_(keep)


def _kernel_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # k(clamp(x)) + tails[1] relu(x - hi) - tails[0] relu(lo - x), k(u) = sum_i alpha_i exp(-gamma (u - d_i)^2);
    # the (n, b, d, D) temporaries (D dictionary terms per element) are the cost: the exponential is computed in
    # place (the same kernels, so the same values), which spares two of them. Terms below 1e-30 are 0 here
    # (_small_terms_zero_exp_, for speed): each enters its sums beside the term of the dictionary point nearest
    # to u, at least exp(-1/8) times that point's coefficient, which absorbs it (float32 keeps 24 bits), so the
    # outputs and gradients are the reference's bit for bit unless one of them is itself below 1e-30 times
    # what flows in: a coefficient gradient of a dictionary point far from every input of the batch, whose
    # update weight decay or Adam's eps then absorbs in turn. The probe in choose() and the engines' tests check.
    dictionary: Tensor = module.dictionary  # type: ignore[assignment]
    gamma = float(module.gamma)  # type: ignore[arg-type]
    lo, hi = dictionary[0], dictionary[-1]
    alpha, tails = p["alpha"], p["tails"]
    clamped_lo = torch.maximum(z, lo)
    diff = torch.sub(torch.minimum(clamped_lo, hi).unsqueeze(-1), dictionary)
    e = _small_terms_zero_exp_(diff.pow(2).mul_(-gamma))
    k = torch.mul(e, alpha).sum(-1)
    t1, t0 = tails[..., 1], tails[..., 0]
    r1 = torch.relu(torch.sub(z, hi))
    r0 = torch.relu(torch.sub(lo, z))
    out = torch.sub(torch.add(k, torch.mul(t1, r1)), torch.mul(t0, r0))
    return out, (z, clamped_lo, lo, hi, diff, e, alpha, t1, t0, r1, r0, gamma, tails.shape)


def _kernel_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    z, clamped_lo, lo, hi, diff, e, alpha, t1, t0, r1, r0, gamma, tails_shape = saved
    # the output's sum and difference: k and the right tail get grad, the left tail -grad
    gm = torch.neg(grad)
    g_t0 = torch.mul(gm, r0).sum_to_size(t0.shape)
    from_left = torch.neg(_threshold_backward(torch.mul(gm, t0), r0, 0))  # SubBackward of lo - x
    g_t1 = torch.mul(grad, r1).sum_to_size(t1.shape)
    from_right = _threshold_backward(torch.mul(grad, t1), r1, 0)
    gk = grad.unsqueeze(-1)  # SumBackward: the gradient expanded over the dictionary
    ge = torch.mul(gk, alpha)
    g_alpha = torch.mul(gk, e).sum_to_size(alpha.shape)
    # ExpBackward, MulBackward (-gamma), PowBackward (2 diff: diff is not needed again, so doubled in place)
    ge.mul_(e).mul_(-gamma).mul_(diff.mul_(2.0))
    gu = ge.sum(-1)  # SubBackward: summed to u.unsqueeze(-1)
    g_lo = torch.where(clamped_lo == hi, gu / 2, gu).masked_fill_(clamped_lo > hi, 0)  # MinimumBackward
    g_z = torch.where(z == lo, g_lo / 2, g_lo).masked_fill_(z < lo, 0)  # MaximumBackward
    left, right = torch.zeros(tails_shape, dtype=grad.dtype), torch.zeros(tails_shape, dtype=grad.dtype)
    left[..., 0] = g_t0  # SelectBackward of tails[..., 0] and of tails[..., 1], summed
    right[..., 1] = g_t1
    return torch.add(torch.add(from_left, from_right), g_z), {"alpha": g_alpha, "tails": left + right}


def _kernel_native_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # _kernel_forward from C++ (native_step.cpp: kernel_forward): its (n, b, d, D) part in two loops around
    # ATen's exp, the same operations on every term in the same order and the dictionary sum in ATen's order
    # (one pass in place of about nine over the terms each way), the rest the same ATen calls
    dictionary: Tensor = module.dictionary  # type: ignore[assignment]
    gamma = float(module.gamma)  # type: ignore[arg-type]
    alpha = p["alpha"]
    members = alpha.reshape(z.shape[0], -1, alpha.shape[-1])  # (n, 1 or d, D): a view of the members' rows
    out, *saved = torch.ops.learnact_native.kernel_forward(z, dictionary, -gamma, _TERM_FLOOR, members, p["tails"])
    return out, (saved, dictionary, -gamma, members, alpha.shape, list(p["tails"].shape))


def _kernel_native_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    tensors, dictionary, neg_gamma, members, alpha_shape, tails_shape = saved
    gz, products, g_tails = torch.ops.learnact_native.kernel_backward(grad, tensors, dictionary, neg_gamma, members,
                                                                      tails_shape)
    return gz, {"alpha": products.sum_to_size(alpha_shape), "tails": g_tails}  # grad * e_i, summed as autograd sums


def _maxout_native_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    # _maxout_backward from C++ (native_step.cpp: maxout_backward): each element's share of the gradient, its
    # products and the sum over the pieces in one loop, the sums over the batch by ATen; the forward is Python's
    xu, q, out, slopes, offsets = saved
    gz, g_slopes, g_offsets = torch.ops.learnact_native.maxout_backward(grad, xu, q, out, slopes, offsets)
    return gz, {"slopes": g_slopes, "offsets": g_offsets}


def _pwl_native_forward(z: Tensor, p: dict[str, Tensor], module: nn.Module) -> tuple[Tensor, Any]:
    # _pwl_forward from C++ (native_step.cpp: pwl_forward): each element's interval and interpolation in one loop
    n = z.shape[0]
    values = p["values"]
    if values.dim() != 4 or values.shape[-2] != 1:
        raise NotImplementedError("the native pwl pass is for per-layer values (per unit: the broadcast strategy)")
    lo, step = _pwl_grid(module, values.shape[-1] - 1)
    out, at, t, r = torch.ops.learnact_native.pwl_forward(z, values.reshape(n, -1), lo, step)
    return out, (at, t, r, step, values.numel())


def _pwl_native_backward(saved: Any, grad: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    at, t, r, step, numel = saved
    gz, g_values = torch.ops.learnact_native.pwl_backward(grad, at, t, r, step, numel)
    return gz, {"values": g_values}


register_derived("kernel", _kernel_forward, _kernel_backward)
register_native("kernel", _kernel_native_forward, _kernel_native_backward, "kernel_terms")
register_native("spline", _spline_native_forward, _spline_native_backward, "spline3")
register_native("rational", _rational_native_forward, _rational_native_backward, "rational")
register_native("maxout", _maxout_forward, _maxout_native_backward, "maxout")
register_native("pwl", _pwl_native_forward, _pwl_native_backward, "pwl")
