"""Many MLPs of one architecture as one stacked model with a member axis.

:class:`StackedMLP` holds the parameters of ``K`` members in one flat buffer:
each named parameter of :class:`~learnact.model.MLP` is a contiguous
``(K, *shape)`` block of it, so the optimiser, snapshots and compaction are a
handful of operations on one tensor. The forward pass runs every member at
once with batched matrix products and the activation maths of
:mod:`learnact.model.activations` (candidates, :func:`mix_candidates`,
:func:`softmax_gate`; no second copy of it). Per-member slices see exactly the
element-wise operations, and the matrix products exactly the kernels, that a
lone model sees, which is what makes the reference mode of
:mod:`.vectorized` bit-identical to the reference trainer.

Training does not build an autograd graph: :meth:`StackedMLP.forward` can
record a :class:`Tape` of the intermediate values, and
:func:`~.stacked_backward.backward_` derives the gradients by hand, writing
them straight into a buffer laid out like the parameters. Each candidate's
derivative still comes from autograd (the candidate's own backward node,
recorded on the spot), so registered candidates need nothing extra.

Members are ordered in **segments**: runs of members with the same
activation in every hidden layer (a fixed candidate, or a gate). Matrix
products, loss and optimiser run once for the stack; each layer's activation
runs once per segment on a contiguous slice, so fixed-activation members
share a stack with gated ones without paying for the mixture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..model import MLP, FixedActivation, GatedActivation
from ..model.activations import Candidate, get_candidate, mix_candidates, softmax_gate
from ._products import ALIGN_BYTES, aligned_members, linear

__all__ = [
    "LayerActivation",
    "Segment",
    "StackedMLP",
    "Tape",
    "Unit",
    "activation_signature",
    "aligned_members",
    "member_rows",
]

#: Element-wise CPU kernels process chunks of this many float32 values, then
#: finish with a scalar loop; some functions (sigmoid, gelu, ...) differ in the
#: last bit between the two paths.
_CHUNK = 32
_ALIGN = ALIGN_BYTES // 4
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


def _uses_gate_param(kind: str, name: str) -> bool:
    """Whether a gate of ``kind`` has the parameter ``name`` (``blocks.<i>.activation.<rest>``)."""
    rest = name.split(".activation.", 1)[1]
    if kind in ("layer", "neuron"):
        return rest == "logits"
    return kind == "input" and rest.startswith("head.")


def _segment_key(sig: tuple[LayerActivation, ...]) -> tuple:
    """Sort key: fixed segments first (by name), then gated ones."""
    return tuple((a.kind != "fixed", a.kind, a.candidates, a.source or "") for a in sig)


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


class Unit:
    """One segment's activation in one hidden layer, with its views precomputed.

    Built after every compaction; views into the parameter and gradient
    buffers stay valid while the optimiser updates them in place.

    Attributes:
        rows: The segment's stack rows (``None`` when it spans the stack).
        kind: ``"fixed"``, ``"layer"``, ``"neuron"`` or ``"input"``.
        source: Input-dependent gates: ``"network"`` or ``"layer"``.
        functions: The candidate functions.
        direct: Per candidate, whether its backward node can be called directly.
        temperature: ``(n, 1)`` (layer gates) or ``(n, 1, 1)`` temperatures.
        params: Gate parameters (logits, or the head's two weights and biases).
        grads: Their gradient views, in the same order.
    """

    __slots__ = ("rows", "kind", "source", "functions", "direct", "temperature", "params", "grads")

    def __init__(self, rows: slice | None, kind: str, source: str | None, functions: list[Candidate],
                 temperature: Tensor | None, params: tuple[Tensor, ...], grads: tuple[Tensor, ...]) -> None:
        from .stacked_backward import reads_input_directly

        self.direct = tuple(reads_input_directly(fn) for fn in functions)
        self.rows = rows
        self.kind = kind
        self.source = source
        self.functions = functions
        self.temperature = temperature
        self.params = params
        self.grads = grads


@dataclass
class Tape:
    """Intermediate values of one training forward pass, for :func:`~.stacked_backward.backward_`.

    Attributes:
        inputs: Per hidden layer, its input ``(K, b, i)``; then the head's input.
        records: Per hidden layer, one tuple per segment:
            ``(z, outputs, values, weights, gate, context, head_pre, head_hidden)``,
            where ``z`` is the pre-activation the candidates read (an autograd
            leaf), ``outputs`` the candidates' outputs (with their backward
            nodes), ``values`` the same detached, ``weights`` each candidate's
            mixture weight as broadcast against ``z``, and the rest ``None``
            unless gated / input-dependent.
    """

    inputs: list[Tensor] = field(default_factory=list)
    records: list[list[tuple]] = field(default_factory=list)


def member_rows(t: Tensor) -> Tensor:
    """``t``, or a copy in which each member's values are their own kernel row.

    Element-wise kernels vectorise chunks of :data:`_CHUNK` values from the
    start of each contiguous row and finish with a scalar loop. When a
    member's slice is a whole number of chunks, a contiguous stack already
    gives each value the path it takes in a lone tensor; otherwise the values
    are copied into rows padded by one element, so the chunking restarts at
    each member.

    Shape:
        - t: ``(K, *)``; output: same shape and values
    """
    K = t.shape[0]
    per = math.prod(t.shape[1:])
    if per % _CHUNK == 0 and t.is_contiguous():
        return t
    return torch.nn.functional.pad(t.reshape(K, per), (0, 1))[:, :per].view(t.shape)


class StackedMLP:
    """``K`` members of one :class:`~learnact.model.MLP` architecture, stacked.

    Members must have the same Linear shapes; gate parameters present in only
    some members (e.g. the logits of gated members next to fixed ones) are
    zero rows for the others and receive no gradient. Members are reordered
    into segments (:attr:`order` maps stack rows to input positions).

    Args:
        models: The members' initialised models.

    Attributes:
        flat: Parameter buffer: each parameter's ``(K, *shape)`` block in
            turn, each block starting on an aligned address.
        params: Named ``(K, *shape)`` views into :attr:`flat`.
        segments: The segments, in member order.
        order: ``(K,)`` input position of each stack row.

    Shape:
        - x: ``(K, b, in_features)``
        - logits: ``(K, b, out_features)``
    """

    def __init__(self, models: Sequence[MLP]) -> None:
        if not models:
            raise ValueError("a stack needs at least one model, got models=[]")
        sigs = [activation_signature(m) for m in models]
        positions = sorted(range(len(models)), key=lambda i: _segment_key(sigs[i]))
        self.order = torch.tensor(positions, dtype=torch.long)
        models = [models[i] for i in positions]
        sigs = [sigs[i] for i in positions]
        shapes: dict[str, tuple[int, ...]] = {}
        for m in models:
            for name, p in m.named_parameters():
                if shapes.setdefault(name, tuple(p.shape)) != tuple(p.shape):
                    raise ValueError(f"models cannot share a stack: parameter {name!r} has shapes "
                                     f"{shapes[name]} and {tuple(p.shape)}")
        linear_names = {n for n in shapes if ".activation." not in n}
        for m in models:
            missing = linear_names - {n for n, _ in m.named_parameters()}
            if missing:
                raise ValueError(f"models cannot share a stack: a model lacks {sorted(missing)}")
        self.names = list(shapes)
        self.shapes = [shapes[n] for n in self.names]
        self.sizes = [int(math.prod(s)) for s in self.shapes]
        self.hidden = models[0].hidden
        self._K = len(models)
        values = []
        for name, size in zip(self.names, self.sizes, strict=True):
            rows = [dict(m.named_parameters()).get(name) for m in models]
            values.append(torch.stack([r.detach().reshape(-1) if r is not None else torch.zeros(size) for r in rows]))
        self.flat = self._pack(values)
        self.segments: list[Segment] = []
        start = 0
        for i in range(1, len(models) + 1):
            if i == len(models) or _segment_key(sigs[i]) != _segment_key(sigs[start]):
                self.segments.append(self._segment(models[start:i], sigs[start], start))
                start = i
        self._refresh()

    # ----------------------------------------------------------------- layout
    @property
    def n_members(self) -> int:
        """Number of members ``K``."""
        return self._K

    def _block_starts(self, K: int) -> list[int]:
        starts, lo = [], 0
        for size in self.sizes:
            starts.append(lo)
            lo += -(-K * size // _ALIGN) * _ALIGN
        starts.append(lo)
        return starts

    def _pack(self, blocks: Sequence[Tensor]) -> Tensor:
        starts = self._block_starts(blocks[0].shape[0])
        buf = torch.zeros(starts[-1])
        for b, lo in zip(blocks, starts, strict=False):
            buf[lo:lo + b.numel()] = b.reshape(-1)
        return buf

    def blocks(self, buffer: Tensor) -> list[Tensor]:
        """``(K, size)`` views of each parameter's block in a buffer laid out like :attr:`flat`."""
        K = self._K
        starts = self._block_starts(K)
        return [buffer[lo:lo + K * size].view(K, size) for lo, size in zip(starts, self.sizes, strict=False)]

    def views(self, buffer: Tensor) -> dict[str, Tensor]:
        """Named ``(K, *shape)`` views of a buffer laid out like :attr:`flat`."""
        return {name: b.view(self._K, *shape)
                for name, shape, b in zip(self.names, self.shapes, self.blocks(buffer), strict=True)}

    def new_buffer(self) -> Tensor:
        """A zero buffer laid out like :attr:`flat` (gradients, optimiser state)."""
        return torch.zeros_like(self.flat)

    def select_buffer(self, buffer: Tensor, keep: Tensor) -> Tensor:
        """Members ``keep`` of ``buffer``, laid out for ``len(keep)`` members."""
        return self._pack([b.index_select(0, keep) for b in self.blocks(buffer)])

    def put_rows_(self, buffer: Tensor, rows: Tensor, source: Tensor) -> None:
        """Copy the members where ``rows`` is True from ``source`` into ``buffer`` (same layout).

        Shape:
            - rows: ``(K,)`` bool
        """
        torch.where(rows[self._owner], source, buffer, out=buffer)

    def member_state(self, buffer: Tensor, row: int) -> dict[str, Tensor]:
        """Named parameters of stack row ``row`` of ``buffer``, as fresh tensors."""
        return {name: b[row].view(shape).clone()
                for name, shape, b in zip(self.names, self.shapes, self.blocks(buffer), strict=True)}

    def _refresh(self) -> None:
        owner = torch.zeros(self.flat.shape[0], dtype=torch.long)  # padding belongs to member 0 (stays zero)
        for block in self.blocks(owner):
            block.copy_(torch.arange(self._K).unsqueeze(1).expand_as(block))
        self._owner = owner
        self.params = self.views(self.flat)
        self.grad = self.new_buffer()
        self.grads = self.views(self.grad)
        p, gr = self.params, self.grads
        self.linears = [(p[f"blocks.{i}.linear.weight"], p[f"blocks.{i}.linear.bias"],
                         gr[f"blocks.{i}.linear.weight"], gr[f"blocks.{i}.linear.bias"])
                        for i in range(len(self.hidden))]
        self.linears.append((p["head.weight"], p["head.bias"], gr["head.weight"], gr["head.bias"]))
        self.units = [[self._unit(seg, layer) for seg in self.segments] for layer in range(len(self.hidden))]
        self.sizes_by_segment = [seg.size for seg in self.segments]
        self.network_context = any(u.kind == "input" and u.source == "network" for us in self.units for u in us)
        self.layer_context = [any(u.kind == "input" and u.source == "layer" for u in us) for us in self.units]

    def _unit(self, seg: Segment, layer: int) -> Unit:
        act = seg.layers[layer]
        rows = None if seg.size == self._K else seg.rows
        prefix = f"blocks.{layer}.activation."
        names = {"fixed": (), "layer": ("logits",), "neuron": ("logits",),
                 "input": ("head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias")}[act.kind]
        params = tuple(self.params[prefix + n] if rows is None else self.params[prefix + n][rows] for n in names)
        grads = tuple(self.grads[prefix + n] if rows is None else self.grads[prefix + n][rows] for n in names)
        T = seg.temperature[layer]
        if T is not None and act.kind != "layer":
            T = T.unsqueeze(2)
        return Unit(rows, act.kind, act.source, seg.functions[layer], T, params, grads)

    def select_(self, keep: Tensor, buffers: Sequence[Tensor] = ()) -> list[Tensor]:
        """Keep only stack rows ``keep`` (ascending), e.g. the members still training.

        Parameters no remaining member uses (the gate of a kind whose members
        have all stopped) are dropped from the layout.

        Args:
            keep: Rows to keep.
            buffers: Other buffers laid out like :attr:`flat` (optimiser state,
                snapshots), compacted the same way.

        Returns:
            ``buffers``, compacted, in the new layout.
        """
        kept = torch.zeros(self._K, dtype=torch.bool)
        kept[keep] = True
        segments = []
        start = 0
        for seg in self.segments:
            rows = kept[seg.rows]
            n = int(rows.sum())
            if n:
                local = rows.nonzero().squeeze(1)
                temps = [t.index_select(0, local) if t is not None else None for t in seg.temperature]
                segments.append(Segment(start, n, seg.layers, seg.functions, temps))
                start += n
        used = [n for n in self.names if ".activation." not in n or any(
            n.startswith(f"blocks.{i}.activation.") and _uses_gate_param(seg.layers[i].kind, n)
            for seg in segments for i in range(len(seg.layers)))]
        picks = [self.names.index(n) for n in used]
        selected = [[self.blocks(buf)[i].index_select(0, keep) for i in picks] for buf in (self.flat, *buffers)]
        self.names = used
        self.shapes = [self.shapes[i] for i in picks]
        self.sizes = [self.sizes[i] for i in picks]
        self.order = self.order[keep]
        self.segments = segments
        self._K = int(keep.numel())
        packed = [self._pack(blocks) for blocks in selected]
        self.flat = packed[0]
        self._refresh()
        return packed[1:]

    def _segment(self, models: Sequence[MLP], layers: tuple[LayerActivation, ...], start: int) -> Segment:
        functions = [[get_candidate(n) for n in a.candidates] for a in layers]
        temps: list[Tensor | None] = []
        for i, a in enumerate(layers):
            if a.kind == "fixed":
                temps.append(None)
            else:
                temps.append(torch.tensor([[float(m.activations[i].temperature)] for m in models]))
        return Segment(start, len(models), layers, functions, temps)

    # ---------------------------------------------------------------- forward
    def gate_weights(self, unit: Unit, context: Tensor | None, record: list | None = None) -> Tensor:
        """Mixture weights of a gated unit: ``(n, c)``, ``(n, d, c)`` or ``(n, b, c)``.

        ``record``, if given, receives the input-dependent head's context,
        first Linear output (an autograd leaf) and ReLU output (with its node).
        """
        kind = unit.kind
        params = unit.params
        if kind != "input":
            return softmax_gate(params[0], unit.temperature)
        assert context is not None
        hid = linear(context, params[0], params[1])
        if record is None:
            return softmax_gate(linear(torch.relu(hid), params[2], params[3]), unit.temperature)
        hid.requires_grad_(True)
        relu_out = torch.relu(hid)
        record.extend((context, hid, relu_out))
        return softmax_gate(linear(relu_out.detach(), params[2], params[3]), unit.temperature)

    def _activate(self, unit: Unit, z: Tensor, x: Tensor | None, h: Tensor | None,
                  records: list | None) -> tuple[Tensor, Tensor | None]:
        fns = unit.functions
        z = member_rows(z)
        if records is None:
            if unit.kind == "fixed":
                return fns[0](z), None
            g = self.gate_weights(unit, x if unit.source == "network" else h)
            return mix_candidates(z, _broadcast_weights(g, unit.kind), fns), g
        z = z.requires_grad_(True) if z._base is None else z.detach().requires_grad_(True)
        if unit.kind == "fixed":
            out = fns[0](z)
            records.append((z, (out,), None, None, None, None, None, None))
            return out.detach(), None
        extra: list = []
        g = self.gate_weights(unit, x if unit.source == "network" else h, extra)
        w = _broadcast_weights(g, unit.kind)
        outs = tuple(fn(z) for fn in fns)
        values = tuple(o.detach() for o in outs)
        weights = tuple(w[..., k] for k in range(len(fns)))
        records.append((z, outs, values, weights, g, *(extra or (None, None, None))))
        return mix_candidates(z, w, [lambda _, v=v: v for v in values]), g

    def forward(self, x: Tensor, tape: Tape | None = None) -> tuple[Tensor, list[list[Tensor | None]]]:
        """Logits of every member and, per segment and hidden layer, the gate weights.

        Args:
            x: The members' inputs.
            tape: If given, filled with what :func:`~.stacked_backward.backward_` needs.

        Returns:
            ``(logits, gates)`` with ``gates[s][l]`` the weights of segment
            ``s`` in layer ``l``: ``(n_s, c)`` (layer gate), ``(n_s, d, c)``
            (neuron) or ``(n_s, b, c)`` (input), ``None`` where fixed.

        Shape:
            - x: ``(K, b, in_features)``
            - logits: ``(K, b, out_features)``
        """
        n_seg = len(self.segments)
        gates: list[list[Tensor | None]] = [[] for _ in range(n_seg)]
        sizes = self.sizes_by_segment
        single = n_seg == 1
        none = [None] * n_seg
        xs = [x] if single else (list(x.split(sizes)) if self.network_context else none)
        h = x
        for layer, units in enumerate(self.units):
            W, b = self.linears[layer][:2]
            z = linear(h, W, b)
            records: list | None = None
            if tape is not None:
                tape.inputs.append(h)
                records = []
                tape.records.append(records)
            if single:
                h, g = self._activate(units[0], z, x, h, records)
                gates[0].append(g)
                continue
            hs = h.split(sizes) if self.layer_context[layer] else none
            outs = []
            for i, (unit, zs) in enumerate(zip(units, z.split(sizes), strict=True)):
                out, g = self._activate(unit, zs, xs[i], hs[i], records)
                outs.append(out)
                gates[i].append(g)
            h = torch.cat(outs)
        if tape is not None:
            tape.inputs.append(h)
        W, b = self.linears[-1][:2]
        return linear(h, W, b), gates


def _broadcast_weights(g: Tensor, kind: str) -> Tensor:
    """Mixture weights shaped to broadcast against ``(n, b, d)`` pre-activations (candidates last)."""
    if kind == "layer":
        return g.view(g.shape[0], 1, 1, g.shape[1])
    if kind == "neuron":
        return g.unsqueeze(1)
    return g.unsqueeze(-2)
