"""Segments: runs of stack members with the same activation in every layer.

A stacked model orders its members so that members with equal
:func:`activation_signature` are contiguous. Matrix products, loss and
optimiser run once for the whole stack; each layer's activation runs once per
segment, on a contiguous slice, through a :class:`Unit` that holds the
segment's views into the parameter and gradient buffers.

An activation is fixed, gated (per layer, per neuron or input-dependent) or a
learnable family: any other ``nn.Module`` (:mod:`.family_segments` computes
those, with a member axis on the family's parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..model import MLP, FixedActivation, GatedActivation
from ..model.activations import Candidate, candidate_derivative, get_candidate
from .family_segments import FamilyOps, choose, module_spec

__all__ = [
    "LayerActivation",
    "Segment",
    "Unit",
    "activation_signature",
    "choose_family_strategies",
    "compact_segments",
    "GATE_KINDS",
    "gate_parameter_names",
    "parameter_names",
    "segment_key",
    "segment_models",
]

_GATE_PARAMS = {"fixed": (), "layer": ("logits",), "neuron": ("logits",),
                "input": ("head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias")}
#: The kinds of gated activation (the others: ``"fixed"`` and ``"family"``).
GATE_KINDS = ("layer", "neuron", "input")


@dataclass(frozen=True)
class LayerActivation:
    """One member's activation in one hidden layer.

    Attributes:
        kind: ``"fixed"``, ``"layer"``, ``"neuron"``, ``"input"`` or ``"family"``.
        candidates: Candidate names (one for ``"fixed"``, none for a family).
        source: For ``"input"``: ``"network"`` or ``"layer"``; else ``None``.
        family: For ``"family"``: the family's name.
        spec: For ``"family"``: :func:`~.family_segments.module_spec` of the
            module (equal specs compute the same function of their parameters).
        parameters: Names of the activation's parameters, relative to the
            activation module (``("logits",)``, ``("slope",)``, ...).
    """

    kind: str
    candidates: tuple[str, ...]
    source: str | None = None
    family: str = ""
    spec: str = ""
    parameters: tuple[str, ...] = ()

    @property
    def gated(self) -> bool:
        """Whether this is a gated mixture (it has gate weights and a temperature)."""
        return self.kind in GATE_KINDS


def _layer_activation(model: MLP, layer: int) -> LayerActivation:
    act = model.activations[layer]
    if isinstance(act, FixedActivation):
        return LayerActivation("fixed", (act.name,))
    if isinstance(act, GatedActivation):
        source = model.gate_sources[layer] if act.gate == "input" else None
        return LayerActivation(act.gate, act.candidates, source, parameters=_GATE_PARAMS[act.gate])
    if not isinstance(act, nn.Module):
        raise TypeError(f"layer {layer + 1}: an activation must be an nn.Module, got {type(act).__name__}")
    return LayerActivation("family", (), None, family=str(getattr(act, "family", "") or type(act).__name__),
                           spec=module_spec(act), parameters=tuple(n for n, _ in act.named_parameters()))


def activation_signature(model: MLP) -> tuple[LayerActivation, ...]:
    """The activation of every hidden layer: members with equal signatures form a segment."""
    return tuple(_layer_activation(model, i) for i in range(len(model.hidden)))


def segment_key(sig: tuple[LayerActivation, ...]) -> tuple:
    """Sort key: fixed segments first (by name), then families and gated ones."""
    return tuple((a.kind != "fixed", a.kind, a.candidates, a.source or "", a.family, a.spec) for a in sig)


def gate_parameter_names(kind: str, layer: int) -> tuple[str, ...]:
    """Names of the gate parameters a gate of ``kind`` has in hidden layer ``layer``."""
    return tuple(f"blocks.{layer}.activation.{n}" for n in _GATE_PARAMS[kind])


def parameter_names(act: LayerActivation, layer: int) -> tuple[str, ...]:
    """Full names of the parameters of activation ``act`` in hidden layer ``layer``."""
    return tuple(f"blocks.{layer}.activation.{n}" for n in act.parameters)


@dataclass
class Segment:
    """A contiguous run of members with the same activations.

    Attributes:
        start: First member index (in the stack's current order).
        size: Number of members.
        layers: The members' activation per hidden layer.
        functions: Per layer, the candidate functions (none for a family).
        temperature: Per gated layer, ``(size, 1)`` temperatures, else ``None``.
        families: Per family layer, how its activation is computed, else ``None``.
    """

    start: int
    size: int
    layers: tuple[LayerActivation, ...]
    functions: list[list[Candidate]]
    temperature: list[Tensor | None]
    families: list[FamilyOps | None]

    @property
    def rows(self) -> slice:
        """The segment's rows in the stack."""
        return slice(self.start, self.start + self.size)

    @property
    def gated(self) -> bool:
        """Whether any layer of the segment is gated."""
        return any(a.gated for a in self.layers)

    @property
    def cost(self) -> float:
        """Rough cost of a member's activations per step, in candidate evaluations."""
        return float(sum(len(fns) if a.kind != "family" else 4 for a, fns in zip(self.layers, self.functions,
                                                                                strict=True)))


def choose_family_strategies(models: Sequence[MLP]) -> None:
    """Choose the stacked strategy of every learnable-family layer of ``models`` now, in this process.

    :func:`~.family_segments.choose` probes each family configuration once per
    process. Called before stacks fork into workers, it leaves them the
    choices and what the probes imported: autograd imports a module on its
    first call with explicit output gradients (0.3-0.5 s), which every
    worker and helper otherwise paid again (about 0.5 s of the ``families``
    preset's 12 s on 2 cores). Models without a family layer cost nothing.
    """
    for model in models:
        for act, width in zip(model.activations, model.hidden, strict=True):
            if not isinstance(act, (FixedActivation, GatedActivation)):
                choose(act, width)


def segment_models(models: Sequence[MLP]) -> tuple[list[int], list[Segment]]:
    """Order members into segments.

    Returns:
        ``(order, segments)``: ``order[row]`` is the input position of the
        member at stack row ``row``; segments cover the rows in order.
    """
    sigs = [activation_signature(m) for m in models]
    order = sorted(range(len(models)), key=lambda i: segment_key(sigs[i]))
    segments: list[Segment] = []
    start = 0
    for row in range(1, len(order) + 1):
        if row == len(order) or segment_key(sigs[order[row]]) != segment_key(sigs[order[start]]):
            layers = sigs[order[start]]
            members = [models[i] for i in order[start:row]]
            temps: list[Tensor | None] = [
                torch.tensor([[float(m.activations[i].temperature)] for m in members])  # type: ignore[arg-type]  # a gate's buffer
                if a.gated else None
                for i, a in enumerate(layers)]
            functions = [[get_candidate(n) for n in a.candidates] for a in layers]
            families = [FamilyOps(members[0].activations[i], choose(members[0].activations[i], members[0].hidden[i]))
                        if a.kind == "family" else None for i, a in enumerate(layers)]
            segments.append(Segment(start, row - start, layers, functions, temps, families))
            start = row
    return order, segments


def compact_segments(segments: Sequence[Segment], kept: Tensor) -> list[Segment]:
    """The segments of the members where ``kept`` (a ``(K,)`` bool mask) is True, renumbered."""
    out = []
    start = 0
    for seg in segments:
        rows = kept[seg.rows]
        n = int(rows.sum())
        if n:
            local = rows.nonzero().squeeze(1)
            temps = [t.index_select(0, local) if t is not None else None for t in seg.temperature]
            out.append(Segment(start, n, seg.layers, seg.functions, temps, seg.families))
            start += n
    return out


class Unit:
    """One segment's activation in one hidden layer, with its views precomputed.

    Built after every compaction; views into the parameter and gradient
    buffers stay valid while the optimiser updates them in place.

    Args:
        seg: The segment.
        layer: The hidden layer.
        params: Named parameter views of the stack; ``grads`` likewise.
        n_members: Stack size (a segment spanning it reads whole tensors).

    Attributes:
        rows: The segment's stack rows (``None`` when it spans the stack).
        kind: ``"fixed"``, ``"layer"``, ``"neuron"``, ``"input"`` or ``"family"``.
        source: Input-dependent gates: ``"network"`` or ``"layer"``.
        functions: The candidate functions.
        derivatives: Per candidate, its registered derivative or ``None`` (autograd).
        temperature: ``(n, 1)`` (layer gates) or ``(n, 1, 1)`` temperatures.
        params: Gate parameters (logits, or the head's two weights and biases),
            or a family's parameters (``(n, *shape)`` each).
        grads: Their gradient views, in the same order.
        family: A family layer's computation (:class:`~.family_segments.FamilyOps`), else ``None``.
    """

    __slots__ = ("rows", "kind", "source", "functions", "derivatives", "temperature", "params", "grads", "family")

    def __init__(self, seg: Segment, layer: int, params: dict[str, Tensor], grads: dict[str, Tensor],
                 n_members: int) -> None:
        act = seg.layers[layer]
        self.rows = None if seg.size == n_members else seg.rows
        self.kind = act.kind
        self.source = act.source
        self.functions = seg.functions[layer]
        self.derivatives = tuple(candidate_derivative(fn) for fn in self.functions)
        T = seg.temperature[layer]
        self.temperature = T.unsqueeze(2) if T is not None and act.kind != "layer" else T
        self.family = seg.families[layer]
        names = parameter_names(act, layer)
        rows = self.rows
        self.params = tuple(params[n] if rows is None else params[n][rows] for n in names)
        self.grads = tuple(grads[n] if rows is None else grads[n][rows] for n in names)
