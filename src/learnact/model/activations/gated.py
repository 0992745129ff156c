"""Gated mixtures of candidate activations: ``y = sum_k g_k * phi_k(x)``.

The mixture weights are ``g = softmax(z / T)`` over the candidate axis. The
logits ``z`` are either learned parameters (static gates, one set per layer or
per neuron) or produced from a context vector by a small gating head
(input-dependent gates). :func:`mix_candidates`, :func:`softmax_gate` and
:func:`gate_entropy` are the maths, written once and shared by every engine;
:class:`GatedActivation` is the only object that holds gate parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..._checks import check_positive, check_positive_int
from ..state import tolerate_missing_extra_state
from .candidates import Candidate, get_candidate

__all__ = [
    "GateKind",
    "GatedActivation",
    "CandidateModule",
    "check_candidates",
    "check_dim",
    "gate_entropy",
    "mix_candidates",
    "softmax_gate",
    "unit_axis",
]

GateKind = Literal["layer", "neuron", "input"]


def softmax_gate(logits: Tensor, temperature: Tensor | float) -> Tensor:
    """Mixture weights ``softmax(logits / T)`` over the last axis.

    Args:
        logits: Gate logits, candidates on the last axis.
        temperature: ``T > 0``; a scalar or a tensor broadcastable to ``logits``.

    Shape:
        - logits: ``(*, c)``
        - output: ``(*, c)``, non-negative, summing to one on the last axis.
    """
    return torch.softmax(logits / temperature, dim=-1)


def gate_entropy(weights: Tensor) -> Tensor:
    """Entropy ``H(g) = -sum_k g_k log g_k`` of mixture weights, in nats.

    Zero weights contribute zero (``0 log 0 = 0``).

    Args:
        weights: Non-negative weights summing to one on the last axis.

    Returns:
        Entropy for each leading index.

    Shape:
        - weights: ``(*, c)``
        - output: ``(*)``
    """
    return -torch.special.xlogy(weights, weights).sum(dim=-1)


def mix_candidates(x: Tensor, weights: Tensor, functions: Sequence[Candidate]) -> Tensor:
    """Convex combination ``sum_k weights[..., k] * functions[k](x)``.

    Args:
        x: Pre-activations.
        weights: Mixture weights, candidates on the last axis; ``weights[..., k]``
            must broadcast against ``x`` (e.g. ``(c,)`` for one gate per layer,
            ``(d, c)`` per neuron, ``(b, 1, c)`` per sample).
        functions: The ``c`` candidate functions, in the weights' order.

    Shape:
        - x: ``(*, d)``
        - weights: ``(**, c)`` with ``**`` broadcastable to ``(*, d)``
        - output: ``(*, d)``
    """
    out = weights[..., 0] * functions[0](x)
    for k in range(1, len(functions)):
        out = out + weights[..., k] * functions[k](x)
    return out


def check_dim(dim: int) -> int:
    """Return ``dim`` if it is an int (the unit axis: ``-1`` for ``(N, F)``, ``1`` for ``(N, C, ...)``)."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ValueError(f"dim must be an integer axis (-1 for (N, F) inputs, 1 for (N, C, L) or (N, C, H, W)), "
                         f"got dim={dim!r}")
    return dim


def check_candidates(state: object, candidates: Sequence[str], owner: str) -> None:
    """Raise ``ValueError`` if a saved extra state names other candidates than ``candidates``."""
    saved = state.get("candidates") if isinstance(state, dict) else None
    if saved is not None and list(saved) != list(candidates):
        raise ValueError(f"this state_dict was saved from a {owner} over candidates {list(saved)}, but the module "
                         f"mixes {list(candidates)}; build the module with candidates={tuple(saved)!r} to load it")


def unit_axis(x: Tensor, dim: int, width: int | None, owner: str) -> int:
    """The non-negative index of ``x``'s unit axis ``dim``, checked against ``width`` units.

    Raises ``ValueError`` naming the expected and actual size, the axis, the
    input shape and the fix when the axis is out of range or has the wrong size
    (``width=None`` skips the size check).
    """
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"{owner}: dim={dim} is not an axis of an input of shape {tuple(x.shape)}; "
                         f"use dim=-1 for (N, F) inputs or dim=1 for (N, C, L) and (N, C, H, W)")
    axis = dim % x.dim()
    if width is not None and x.shape[axis] != width:
        raise ValueError(f"{owner} has {width} units on axis dim={dim}, but the input has {x.shape[axis]} there "
                         f"(input shape {tuple(x.shape)}); pass the axis that holds the {width} units/channels "
                         f"(dim=-1 for (N, F), dim=1 for (N, C, L) or (N, C, H, W)) or build it with "
                         f"width={x.shape[axis]}")
    return axis


class CandidateModule(nn.Module):
    """Base of the modules that compute registered candidates by name (:class:`GatedActivation`,
    :class:`~learnact.model.activations.frozen.FrozenMixture`).

    A subclass sets ``candidates`` (the names, in order) and ``functions``
    (``get_candidate(name)`` of each). The names travel with the module: in
    the state_dict as extra state, checked at load (a state saved from other
    candidates is refused with ``ValueError`` naming both lists; a
    tensor-only state, such as a weights file, loads unchecked); pickling
    and ``copy.deepcopy`` keep the names and resolve the functions from the
    candidate registry again, so a registered lambda pickles wherever the
    registration has run.
    """

    candidates: tuple[str, ...]
    functions: list[Candidate]

    def get_extra_state(self) -> dict[str, object]:
        """The candidate names, saved in the state_dict and checked by :meth:`set_extra_state`."""
        return {"candidates": list(self.candidates)}

    def set_extra_state(self, state: object) -> None:
        """Refuse a state saved from other candidates (``ValueError`` naming both lists)."""
        check_candidates(state, self.candidates, type(self).__name__)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, local_metadata: Any, strict: bool,
                              missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        tolerate_missing_extra_state(prefix, missing_keys)  # tensor-only states (weight files) load unchecked

    def __getstate__(self) -> dict[str, object]:
        """Pickle and deep-copy by candidate names: the callables are re-resolved from the registry."""
        state = self.__dict__.copy()
        state.pop("functions", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)
        self.functions = [get_candidate(n) for n in self.candidates]


class GatedActivation(CandidateModule):
    """A learned mixture of candidate activations (drop-in ``nn.Module``).

    Args:
        candidates: Names from the candidate registry, e.g. ``("relu", "tanh")``.
        gate: ``"layer"``: one logit vector shared by all units and samples;
            ``"neuron"``: one logit vector per unit (needs ``width``);
            ``"input"``: logits from a gating head applied to a context vector.
        width: Number of units ``d`` (required for ``gate="neuron"``; for
            ``gate="input"`` the default context width when none is given).
        temperature: Softmax temperature ``T > 0`` (a buffer; schedules may change it).
        context_dim: Width of the context fed to the gating head (``gate="input"``);
            defaults to ``width`` (the pre-activation itself is the context).
        gate_hidden: Hidden width of the gating head
            ``Linear(context_dim, gate_hidden) -> ReLU -> Linear(gate_hidden, c)``.
        dim: The unit (channel) axis of the input for per-unit gates: ``-1``
            (the default) for ``(N, F)`` features, ``1`` for ``(N, C, L)`` or
            ``(N, C, H, W)`` feature maps. Per-neuron gates then hold one logit
            vector per channel, broadcast over the other axes. Input gates on a
            feature map read the channel vector at each position (channels
            moved last, the head applied per position), so their weights are
            per sample *and* position. Layer gates ignore ``dim`` (any shape works).

    Static logits start at zero, i.e. a uniform mixture. An input whose unit
    axis does not hold ``width`` units raises ``ValueError`` naming both sizes.
    Input gates keep the weights of their most recent forward pass in
    ``last_weights`` (read by :func:`learnact.model.entropy_penalty`).

    Serialization: the candidate names travel in the state_dict as extra state
    (``_extra_state``) and a state saved from other candidates is refused with
    ``ValueError``; a tensor-only state (a weights file) loads unchecked.
    Pickling and ``copy.deepcopy`` store the names and re-resolve the functions
    from the candidate registry, so a registered lambda pickles wherever the
    registration has run. ``torch.jit.script`` is not supported: the candidates
    are arbitrary Python callables (a user's function or lambda) that TorchScript
    cannot compile; ``torch.jit.trace`` and ``torch.compile(fullgraph=True)`` work.

    Shape:
        - x: ``(b, d)`` pre-activations, or ``(b, d, *)`` with ``dim=1``
        - context: ``(b, context_dim)`` (input gates only; defaults to ``x``;
          with ``dim=1`` a context of x's layout is read per position)
        - output: same as x
    """

    temperature: Tensor

    def __init__(
        self,
        candidates: Sequence[str] = ("relu", "tanh", "sigmoid"),
        *,
        gate: GateKind = "layer",
        width: int | None = None,
        temperature: float = 1.0,
        context_dim: int | None = None,
        gate_hidden: int = 16,
        dim: int = -1,
    ) -> None:
        super().__init__()
        if isinstance(candidates, str):  # tuple("relu") would be ("r", "e", "l", "u")
            raise ValueError(f"candidates must be a sequence of names, got the string {candidates!r}; write "
                             f"candidates=({candidates!r},) or a list of several")
        names = tuple(candidates)
        if not names:
            raise ValueError("candidates must name at least one activation, got candidates=()")
        if len(set(names)) != len(names):
            raise ValueError(f"candidates must not repeat a name, got candidates={names!r}")
        self.functions = [get_candidate(n) for n in names]
        self.candidates = names
        if gate not in ("layer", "neuron", "input"):
            raise ValueError(f"gate must be 'layer', 'neuron' or 'input', got gate={gate!r}")
        self.gate = gate
        check_positive(temperature, "temperature")
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        c = len(names)
        self.logits: nn.Parameter | None = None
        self.head: nn.Sequential | None = None
        if gate == "layer":
            self.logits = nn.Parameter(torch.zeros(c))
        elif gate == "neuron":
            if width is None:
                raise ValueError("gate='neuron' needs width (the number of units), got width=None")
            check_positive_int(width, "width")
            self.logits = nn.Parameter(torch.zeros(width, c))
        else:
            n_context = context_dim if context_dim is not None else width
            if n_context is None:
                raise ValueError("gate='input' needs context_dim (or width), got neither")
            check_positive_int(n_context, "context_dim")
            check_positive_int(gate_hidden, "gate_hidden")
            self.head = nn.Sequential(nn.Linear(n_context, gate_hidden), nn.ReLU(), nn.Linear(gate_hidden, c))
        self.width = width
        self.context_dim = context_dim
        self.dim = check_dim(dim)
        self.last_weights: Tensor | None = None  # input gates: the weights of the most recent forward pass

    @property
    def n_candidates(self) -> int:
        """Number of candidates ``c``."""
        return len(self.candidates)

    def gate_logits(self, context: Tensor | None = None) -> Tensor:
        """Raw logits: ``(c,)`` per layer, ``(d, c)`` per neuron, ``(*, c)`` from a context ``(*, context_dim)``."""
        if self.head is not None:
            if context is None:
                raise ValueError("input-dependent gates need a context tensor, got context=None")
            return self.head(context)
        assert self.logits is not None
        return self.logits

    def gate_weights(self, context: Tensor | None = None) -> Tensor:
        """Mixture weights ``softmax(z / T)``.

        Shape:
            - output: ``(c,)`` (layer), ``(d, c)`` (neuron) or ``(*, c)`` (input, for a
              context ``(*, context_dim)``)
        """
        return softmax_gate(self.gate_logits(context), self.temperature)

    def entropy(self, context: Tensor | None = None) -> Tensor:
        """Gate entropy in nats, averaged over units (neuron) or samples (input).

        Shape:
            - output: ``()``
        """
        return gate_entropy(self.gate_weights(context)).mean()

    def forward_with_weights(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mixture output and the weights used.

        Returns:
            ``(y, g)`` with ``y`` of x's shape and ``g`` as in :meth:`gate_weights`; for
            input gates on a feature map ``(b, C, *s)`` with ``dim=1``, ``g`` is ``(b, *s, c)``
            (one weight vector per sample and position).
        """
        if self.gate == "layer":  # one weight vector: any shape
            weights = self.gate_weights()
            return mix_candidates(x, weights, self.functions), weights
        units = self.width if (self.head is None or context is not None) else (self.context_dim or self.width)
        axis = unit_axis(x, self.dim, units, self._name())
        if axis == x.dim() - 1:  # units already last: (N, F), the MLP's path
            if self.head is not None and context is None:
                context = x
            weights = self.gate_weights(context)
            w = weights
            if self.head is not None:
                self._keep(weights)
                w = weights.unsqueeze(-2)
            return mix_candidates(x, w, self.functions), weights
        xm = x.movedim(axis, -1)
        if self.head is None:
            weights = self.gate_weights()
            return mix_candidates(xm, weights, self.functions).movedim(-1, axis), weights
        if context is None:
            context = xm
        elif context.dim() == x.dim():
            context = context.movedim(axis, -1)
        weights = self.gate_weights(context)
        self._keep(weights)
        # per position: (b, *s, 1, c); per sample (a 2-D context): (b, 1, ..., 1, c)
        w = weights.unsqueeze(-2) if weights.dim() == xm.dim() else weights.reshape(
            weights.shape[0], *([1] * (xm.dim() - 1)), weights.shape[-1])
        return mix_candidates(xm, w, self.functions).movedim(-1, axis), weights

    def _keep(self, weights: Tensor) -> None:
        """Keep an input gate's weights as ``last_weights``, except while ``torch.export`` traces the module.

        An exported program has no such side effects (it would not keep the
        attribute), and the export warned that the attribute "must be registered
        as buffers". Only training reads it (:func:`learnact.model.entropy_penalty`);
        ``torch.compile`` keeps it as eager mode does. Inside a ``torch.func``
        transform (``vmap``, ``grad``) the weights are a transform's own tensor,
        which must not escape it: ``last_weights`` is then ``None``.
        """
        if torch.compiler.is_exporting():
            return
        wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
        inside_transform = not torch.compiler.is_compiling() and wrapped is not None and wrapped(weights)
        self.last_weights = None if inside_transform else weights

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        state["last_weights"] = None  # part of the last forward's graph, not of the module
        return state

    def _name(self) -> str:
        return f"GatedActivation(gate={self.gate!r}, width={self.width}, dim={self.dim})"

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.forward_with_weights(x, context)[0]

    def extra_repr(self) -> str:
        return (
            f"candidates={list(self.candidates)}, gate={self.gate!r}, "
            f"temperature={float(self.temperature):g}" + (f", dim={self.dim}" if self.dim != -1 else "")
        )
