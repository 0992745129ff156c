"""Many MLPs of one architecture as one stacked model with a member axis.

:class:`StackedMLP` holds the parameters of ``K`` members in one flat buffer:
each named parameter of :class:`~learnact.model.MLP` is a contiguous
``(K, *shape)`` block of it, so the optimiser, snapshots and compaction are a
handful of operations on one tensor. The forward pass runs every member at
once with batched matrix products and the activation maths of
:mod:`learnact.model.activations` (no second copy of it): candidates,
:func:`mix_candidates`, :func:`softmax_gate` and :func:`gate_entropy` are
applied to stacked tensors whose per-member slices see exactly the
element-wise operations, and the matrix products exactly the kernels, that a
lone model sees; autograd then differentiates the same graph. That is what
makes the reference mode of :mod:`.vectorized` bit-identical to the
reference trainer.

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

__all__ = ["LayerActivation", "Segment", "StackedMLP", "activation_signature", "aligned_members"]

#: Element-wise CPU kernels process chunks of this many float32 values, then
#: finish with a scalar loop; some functions (sigmoid, gelu, ...) differ in the
#: last bit between the two paths.
_CHUNK = 32
#: Matrix-vector kernels read their operands differently depending on the
#: address alignment (bytes); lone tensors are allocated on this boundary.
_ALIGN_BYTES = 64
_ALIGN = _ALIGN_BYTES // 4


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
    gate_params: list[tuple[Tensor, ...]] = field(default_factory=list)
    rows: slice | None = None

    @property
    def gated(self) -> bool:
        """Whether any layer of the segment is gated."""
        return any(a.kind != "fixed" for a in self.layers)


def aligned_members(t: Tensor) -> Tensor:
    """``t``, or a copy in which each member's slice starts on an aligned address.

    A lone tensor starts on a :data:`_ALIGN_BYTES` boundary and is contiguous;
    some BLAS kernels (matrix-vector products, tiny outputs) round differently
    when handed another alignment. The copy pads each member to a whole number
    of aligned blocks.

    Shape:
        - t: ``(K, *)``; output: same shape and values
    """
    K = t.shape[0]
    per = math.prod(t.shape[1:])
    if per % _ALIGN == 0 and t.data_ptr() % _ALIGN_BYTES == 0 and t.is_contiguous():
        return t
    padded = -(-per // _ALIGN) * _ALIGN
    buf = t.new_empty(K, padded)[:, :per]
    buf.copy_(t.reshape(K, per))
    return buf.view(t.shape)


def member_rows(t: Tensor) -> Tensor:
    """``t``, or a view in which each member's values are their own kernel row.

    Element-wise kernels vectorise chunks of :data:`_CHUNK` values from the
    start of each contiguous row and finish with a scalar loop. When a
    member's slice is a whole number of chunks, a contiguous stack already
    gives each value the path it takes in a lone tensor; otherwise the values
    are copied into rows padded by one element, so the chunking restarts at
    each member (this is differentiable).

    Shape:
        - t: ``(K, *)``; output: same shape and values
    """
    K = t.shape[0]
    per = math.prod(t.shape[1:])
    if per % _CHUNK == 0 and t.is_contiguous():
        return t
    return torch.nn.functional.pad(t.reshape(K, per), (0, 1))[:, :per].view(t.shape)


class _HeadVector(torch.autograd.Function):
    """A one-output Linear for every member with a lone ``Linear``'s rounding.

    A lone ``Linear(d, 1)`` is a matrix-vector product; per member,
    ``w (1, d) @ x^T (d, b)`` on aligned operands reproduces it. The
    backward returns the input gradient contiguous, the layout a lone
    model's gradient has, so reductions further down add in the same order.
    """

    @staticmethod
    def forward(ctx, h: Tensor, W: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(h, W)
        h = aligned_members(h)
        out = torch.bmm(aligned_members(W), h.transpose(1, 2))
        return (out + b.unsqueeze(2)).transpose(1, 2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        h, W = ctx.saved_tensors
        grad = grad.contiguous()
        return torch.bmm(grad, W), torch.bmm(grad.transpose(1, 2), h), grad.sum(1)


@dataclass(frozen=True)
class _Linear:
    """One stacked ``Linear``: weight ``(K, o, i)`` and bias ``(K, o)`` (autograd leaves or slices)."""

    weight: Tensor
    bias: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        """``x @ W^T + b`` for every member.

        The transposed and broadcast views are made on every call: views of
        a leaf made before an in-place optimiser update lose their link to it.

        Shape:
            - x: ``(K, b, i)``; output ``(K, b, o)``
        """
        out = self.weight.shape[1]
        if out == 1:
            return _HeadVector.apply(x, self.weight, self.bias)
        if out < _ALIGN:
            x = aligned_members(x)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


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
        linear = [n for n in shapes if not n.split(".")[2:3] == ["activation"]]
        for m in models:
            own = {n for n, _ in m.named_parameters()}
            if not set(linear) <= own:
                raise ValueError(f"models cannot share a stack: a model lacks {sorted(set(linear) - own)}")
        self.names = list(shapes)
        self.shapes = [shapes[n] for n in self.names]
        self.sizes = [int(torch.Size(s).numel()) for s in self.shapes]
        self.hidden = models[0].hidden
        self.in_features = models[0].in_features
        self.out_features = models[0].out_features
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
        self.params: dict[str, Tensor] = {}
        self._pads: list[Tensor] = []
        self._pads_for = -1
        self._views()

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
        K = blocks[0].shape[0]
        starts = self._block_starts(K)
        buf = torch.zeros(starts[-1])
        for b, lo in zip(blocks, starts, strict=False):
            buf[lo:lo + b.numel()] = b.reshape(-1)
        return buf

    def blocks(self, buffer: Tensor) -> list[Tensor]:
        """``(K, size)`` views of each parameter's block in a buffer laid out like :attr:`flat`."""
        K = self._K
        starts = self._block_starts(K)
        return [buffer[lo:lo + K * size].view(K, size) for lo, size in zip(starts, self.sizes, strict=False)]

    def new_buffer(self) -> Tensor:
        """A zero buffer laid out like :attr:`flat` (for optimiser state)."""
        return torch.zeros_like(self.flat)

    def select_buffer(self, buffer: Tensor, keep: Tensor) -> Tensor:
        """Members ``keep`` of ``buffer``, laid out for ``len(keep)`` members."""
        return self._pack([b.index_select(0, keep) for b in self.blocks(buffer)])

    def put_rows_(self, buffer: Tensor, index: Tensor, source: Tensor) -> None:
        """Copy members ``index`` of ``source`` into ``buffer`` (same layout)."""
        for dst, src in zip(self.blocks(buffer), self.blocks(source), strict=True):
            dst.index_copy_(0, index, src.index_select(0, index))

    def member_state(self, buffer: Tensor, row: int) -> dict[str, Tensor]:
        """Named parameters of stack row ``row`` of ``buffer``, as fresh tensors."""
        return {name: b[row].view(shape).clone()
                for name, shape, b in zip(self.names, self.shapes, self.blocks(buffer), strict=True)}

    def _views(self) -> None:
        K = self._K
        self.params = {name: b.view(K, *shape)
                       for name, shape, b in zip(self.names, self.shapes, self.blocks(self.flat), strict=True)}

    def leaves(self) -> list[Tensor]:
        """Autograd leaves viewing :attr:`flat`, in parameter order.

        Valid (and updated in place by the optimiser) until the next
        compaction; the views the forward pass reads are built here once.
        """
        self._views()
        for p in self.params.values():
            p.requires_grad_(True)
        p = self.params
        self._linears = [_Linear(p[f"blocks.{i}.linear.weight"], p[f"blocks.{i}.linear.bias"])
                         for i in range(len(self.hidden))]
        self._head = _Linear(p["head.weight"], p["head.bias"])
        whole = len(self.segments) == 1
        for seg in self.segments:
            rows = slice(seg.start, seg.start + seg.size)
            seg.gate_params = []
            for i, act in enumerate(seg.layers):
                prefix = f"blocks.{i}.activation."
                names = {"fixed": (), "layer": ("logits",), "neuron": ("logits",),
                         "input": ("head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias")}[act.kind]
                seg.gate_params.append(tuple(p[prefix + n] for n in names))
            seg.rows = None if whole else rows
        return list(self.params.values())

    def flatten_grads(self, grads: Sequence[Tensor]) -> Tensor:
        """Per-parameter gradients ``(K, *shape)`` packed like :attr:`flat` (one ``cat``)."""
        K = self._K
        if self._pads_for != K:
            starts = self._block_starts(K)
            self._pads = [torch.zeros(starts[i + 1] - starts[i] - K * size) for i, size in enumerate(self.sizes)]
            self._pads_for = K
        pieces: list[Tensor] = []
        for g, pad in zip(grads, self._pads, strict=True):
            pieces.append(g.reshape(-1))
            if pad.numel():
                pieces.append(pad)
        return torch.cat(pieces)

    def param_blocks(self, buffer: Tensor) -> list[Tensor]:
        """``(K, *shape)`` views of each parameter in a buffer laid out like :attr:`flat`."""
        return [b.view(self._K, *shape) for b, shape in zip(self.blocks(buffer), self.shapes, strict=True)]

    def select_(self, keep: Tensor) -> None:
        """Keep only stack rows ``keep`` (ascending), e.g. the members still training."""
        self.flat = self.select_buffer(self.flat, keep)
        self.order = self.order[keep]
        kept = torch.zeros(self._K, dtype=torch.bool)
        kept[keep] = True
        segments = []
        start = 0
        for seg in self.segments:
            rows = kept[seg.start:seg.start + seg.size]
            n = int(rows.sum())
            if n:
                local = rows.nonzero().squeeze(1)
                temps = [t.index_select(0, local) if t is not None else None for t in seg.temperature]
                segments.append(Segment(start, n, seg.layers, seg.functions, temps))
                start += n
        self.segments = segments
        self._K = int(keep.numel())
        self._views()

    # ---------------------------------------------------------------- forward
    def _segment(self, models: Sequence[MLP], layers: tuple[LayerActivation, ...], start: int) -> Segment:
        functions = [[get_candidate(n) for n in a.candidates] for a in layers]
        temps: list[Tensor | None] = []
        for i, a in enumerate(layers):
            if a.kind == "fixed":
                temps.append(None)
            else:
                temps.append(torch.tensor([[float(m.activations[i].temperature)] for m in models]))
        return Segment(start, len(models), layers, functions, temps)

    def _gate(self, seg: Segment, layer: int, context: Tensor | None) -> Tensor:
        act = seg.layers[layer]
        T = seg.temperature[layer]
        assert T is not None
        params = seg.gate_params[layer]
        if seg.rows is not None:
            params = tuple(t[seg.rows] for t in params)
        if act.kind == "layer":
            return softmax_gate(params[0], T)
        if act.kind == "neuron":
            return softmax_gate(params[0], T.unsqueeze(2))
        assert context is not None
        hid = _Linear(params[0], params[1])(context)
        logits = _Linear(params[2], params[3])(torch.relu(hid))
        return softmax_gate(logits, T.unsqueeze(2))

    def _activate(self, seg: Segment, layer: int, z: Tensor, x: Tensor | None, h: Tensor | None
                  ) -> tuple[Tensor, Tensor | None]:
        act = seg.layers[layer]
        fns = seg.functions[layer]
        z = member_rows(z)
        if act.kind == "fixed":
            return fns[0](z), None
        context = (x if act.source == "network" else h) if act.kind == "input" else None
        g = self._gate(seg, layer, context)
        if act.kind == "layer":
            w = g.view(g.shape[0], 1, 1, g.shape[1])
        elif act.kind == "neuron":
            w = g.unsqueeze(1)
        else:
            w = g.unsqueeze(-2)
        return mix_candidates(z, w, fns), g

    def forward(self, x: Tensor) -> tuple[Tensor, list[list[Tensor | None]]]:
        """Logits of every member and, per segment and hidden layer, the gate weights.

        Call :meth:`leaves` first (and again after :meth:`select_`).

        Returns:
            ``(logits, gates)`` with ``gates[s][l]`` the weights of segment
            ``s`` in layer ``l``: ``(n_s, c)`` (layer gate), ``(n_s, d, c)``
            (neuron) or ``(n_s, b, c)`` (input), ``None`` where fixed.

        Shape:
            - x: ``(K, b, in_features)``
            - logits: ``(K, b, out_features)``
        """
        segments = self.segments
        gates: list[list[Tensor | None]] = [[] for _ in segments]
        h = x
        if len(segments) == 1:
            seg = segments[0]
            for layer, linear in enumerate(self._linears):
                h, g = self._activate(seg, layer, linear(h), x, h)
                gates[0].append(g)
            return self._head(h), gates
        sizes = [seg.size for seg in segments]
        xs = x.split(sizes) if self._needs_network_input else [None] * len(segments)
        for layer, linear in enumerate(self._linears):
            zs = linear(h).split(sizes)
            hs = h.split(sizes) if self._needs_layer_input[layer] else [None] * len(segments)
            outs = []
            for i, seg in enumerate(segments):
                out, g = self._activate(seg, layer, zs[i], xs[i], hs[i])
                outs.append(out)
                gates[i].append(g)
            h = torch.cat(outs)
        return self._head(h), gates

    @property
    def _needs_network_input(self) -> bool:
        return any(a.kind == "input" and a.source == "network" for seg in self.segments for a in seg.layers)

    @property
    def _needs_layer_input(self) -> list[bool]:
        return [any(seg.layers[i].kind == "input" and seg.layers[i].source == "layer" for seg in self.segments)
                for i in range(len(self.hidden))]


def _segment_key(sig: tuple[LayerActivation, ...]) -> tuple:
    """Sort key: fixed segments first (by name), then gated ones."""
    return tuple((a.kind != "fixed", a.kind, a.candidates, a.source or "") for a in sig)
