"""Segments: runs of stack members with the same activation in every layer.

A stacked model orders its members so that members with equal
:func:`activation_signature` are contiguous. Matrix products, loss and
optimiser run once for the whole stack; each layer's activation runs once per
segment, on a contiguous slice, through a :class:`Unit` that holds the
segment's views into the parameter and gradient buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..model import MLP, FixedActivation, GatedActivation
from ..model.activations import Candidate, candidate_derivative, get_candidate

__all__ = [
    "LayerActivation",
    "Segment",
    "Unit",
    "activation_signature",
    "compact_segments",
    "gate_parameter_names",
    "segment_models",
]

_GATE_PARAMS = {"fixed": (), "layer": ("logits",), "neuron": ("logits",),
                "input": ("head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias")}


@dataclass(frozen=True)
class LayerActivation:
    """One member's activation in one hidden layer.

    Attributes:
        kind: ``"fixed"``, ``"layer"``, ``"neuron"`` or ``"input"``.
        candidates: Candidate names (one for ``"fixed"``).
        source: For ``"input"``: ``"network"`` or ``"layer"``; else ``None``.
    """

    kind: str
    candidates: tuple[str, ...]
    source: str | None = None


def _layer_activation(model: MLP, layer: int) -> LayerActivation:
    act = model.activations[layer]
    if isinstance(act, FixedActivation):
        return LayerActivation("fixed", (act.name,))
    if not isinstance(act, GatedActivation):
        raise TypeError(f"layer {layer + 1}: the stacked engine supports FixedActivation and GatedActivation, "
                        f"got {type(act).__name__}")
    source = model.gate_sources[layer] if act.gate == "input" else None
    return LayerActivation(act.gate, act.candidates, source)


def activation_signature(model: MLP) -> tuple[LayerActivation, ...]:
    """The activation of every hidden layer: members with equal signatures form a segment."""
    return tuple(_layer_activation(model, i) for i in range(len(model.hidden)))


def _segment_key(sig: tuple[LayerActivation, ...]) -> tuple:
    """Sort key: fixed segments first (by name), then gated ones."""
    return tuple((a.kind != "fixed", a.kind, a.candidates, a.source or "") for a in sig)


def gate_parameter_names(kind: str, layer: int) -> tuple[str, ...]:
    """Names of the gate parameters a gate of ``kind`` has in hidden layer ``layer``."""
    return tuple(f"blocks.{layer}.activation.{n}" for n in _GATE_PARAMS[kind])


@dataclass
class Segment:
    """A contiguous run of members with the same activations.

    Attributes:
        start: First member index (in the stack's current order).
        size: Number of members.
        layers: The members' activation per hidden layer.
        functions: Per layer, the candidate functions.
        temperature: Per gated layer, ``(size, 1)`` temperatures, else ``None``.
    """

    start: int
    size: int
    layers: tuple[LayerActivation, ...]
    functions: list[list[Candidate]]
    temperature: list[Tensor | None]

    @property
    def rows(self) -> slice:
        """The segment's rows in the stack."""
        return slice(self.start, self.start + self.size)

    @property
    def gated(self) -> bool:
        """Whether any layer of the segment is gated."""
        return any(a.kind != "fixed" for a in self.layers)


def segment_models(models: Sequence[MLP]) -> tuple[list[int], list[Segment]]:
    """Order members into segments.

    Returns:
        ``(order, segments)``: ``order[row]`` is the input position of the
        member at stack row ``row``; segments cover the rows in order.
    """
    sigs = [activation_signature(m) for m in models]
    order = sorted(range(len(models)), key=lambda i: _segment_key(sigs[i]))
    segments: list[Segment] = []
    start = 0
    for row in range(1, len(order) + 1):
        if row == len(order) or _segment_key(sigs[order[row]]) != _segment_key(sigs[order[start]]):
            layers = sigs[order[start]]
            members = [models[i] for i in order[start:row]]
            temps: list[Tensor | None] = [
                None if a.kind == "fixed" else torch.tensor([[float(m.activations[i].temperature)] for m in members])  # type: ignore[arg-type]  # a gated layer's temperature buffer
                for i, a in enumerate(layers)]
            functions = [[get_candidate(n) for n in a.candidates] for a in layers]
            segments.append(Segment(start, row - start, layers, functions, temps))
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
            out.append(Segment(start, n, seg.layers, seg.functions, temps))
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
        kind: ``"fixed"``, ``"layer"``, ``"neuron"`` or ``"input"``.
        source: Input-dependent gates: ``"network"`` or ``"layer"``.
        functions: The candidate functions.
        derivatives: Per candidate, its registered derivative or ``None`` (autograd).
        temperature: ``(n, 1)`` (layer gates) or ``(n, 1, 1)`` temperatures.
        params: Gate parameters (logits, or the head's two weights and biases).
        grads: Their gradient views, in the same order.
    """

    __slots__ = ("rows", "kind", "source", "functions", "derivatives", "temperature", "params", "grads")

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
        names = gate_parameter_names(act.kind, layer)
        rows = self.rows
        self.params = tuple(params[n] if rows is None else params[n][rows] for n in names)
        self.grads = tuple(grads[n] if rows is None else grads[n][rows] for n in names)
