"""Many MLPs of one architecture as one stacked model with a member axis.

:class:`StackedMLP` holds the parameters of ``K`` members in one flat buffer
(:class:`~._layout.FlatLayout`): each named parameter of
:class:`~learnact.model.MLP` is a contiguous ``(K, *shape)`` block of it, so
the optimiser, snapshots and compaction are a handful of operations on whole
buffers. The forward pass runs every member at once with batched matrix
products and the activation maths of :mod:`learnact.model.activations`
(candidates, :func:`mix_candidates`, :func:`softmax_gate`; no second copy of
it), one segment (:mod:`.segments`) at a time. Per-member slices see exactly
the element-wise operations, and the matrix products exactly the kernels
(:mod:`._products`), that a lone model sees: this is what makes the reference
mode of :mod:`.vectorized` bit-identical to the reference trainer.

Training builds no autograd graph: :meth:`StackedMLP.forward` can record a
:class:`Tape` of the intermediate values, and
:func:`~.stacked_backward.backward_` derives the gradients by hand, writing
them straight into :attr:`StackedMLP.grad`. Each candidate's derivative is the
one registered with it (the kernel autograd calls), or autograd itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..model import MLP
from ..model.activations import Candidate, Derivative, mix_candidates, softmax_gate
from ._layout import FlatLayout
from ._products import linear
from .segments import Unit, compact_segments, parameter_names, segment_models

__all__ = ["StackedMLP", "Tape", "candidate_input", "member_rows", "reads_stack"]

#: Element-wise CPU kernels process chunks of this many float32 values, then
#: finish with a scalar loop; some functions (sigmoid, gelu, ...) differ in the
#: last bit between the two paths.
_CHUNK = 32


@dataclass
class Tape:
    """Intermediate values of one training forward pass, for :func:`~.stacked_backward.backward_`.

    Attributes:
        inputs: Per hidden layer, its input ``(K, b, i)``; then the head's input.
        records: Per hidden layer, one tuple per segment:
            ``(z, outputs, weights, gate, context, head_hidden)``, where ``z``
            is the pre-activation the candidates read, ``outputs`` the
            candidates' outputs, ``weights`` the mixture weights as broadcast
            against ``z`` (candidates last), and the rest ``None`` unless gated
            / input-dependent (``head_hidden``: the gating head's ReLU output).
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


_READS_STACK: dict[tuple[Candidate, Derivative | None], bool] = {}


def reads_stack(fn: Candidate, derivative: Derivative | None) -> bool:
    """Whether candidate ``fn`` (and its registered derivative) must read the members' values as one
    contiguous stack instead of :func:`member_rows`'s padded rows.

    The padded rows give each member the chunking of a lone tensor, which is
    what most kernels need. Some kernels (``gelu`` and its backward on this
    PyTorch) instead compute a tensor whose rows are apart (a two-dimensional
    iteration) otherwise than a contiguous one, whatever the chunking: on
    those the contiguous stack reproduces a lone member and the padded rows
    do not. Decided by a probe, once per function: ``True`` only where the
    padded rows differ from lone members and the contiguous stack does not.
    """
    key = (fn, derivative)
    cached = _READS_STACK.get(key)
    if cached is not None:
        return cached
    gen = torch.Generator().manual_seed(0)
    rows_exact = stack_exact = True
    with torch.no_grad():
        for b, d in ((25, 8), (7, 6), (21, 16), (1, 3), (33, 5)):
            z = torch.randn(3, b, d, generator=gen) * 4
            g = torch.randn(3, b, d, generator=gen)
            lone = [fn(z[k].clone()) for k in range(3)]
            want = torch.stack(lone)
            want_grad = (torch.stack([derivative(g[k].clone(), z[k].clone(), lone[k]) for k in range(3)])
                         if derivative is not None else want)
            for layout, zl in (("rows", member_rows(z)), ("stack", z)):
                y = fn(zl)
                ok = torch.equal(y, want) and (derivative is None or torch.equal(derivative(g, zl, y), want_grad))
                if layout == "rows":
                    rows_exact = rows_exact and ok
                else:
                    stack_exact = stack_exact and ok
    return _READS_STACK.setdefault(key, not rows_exact and stack_exact)


def candidate_input(fn: Candidate, derivative: Derivative | None, z: Tensor) -> Tensor:
    """``z`` (from :func:`member_rows`) as candidate ``fn`` reads it: contiguous where :func:`reads_stack`."""
    return z.contiguous() if reads_stack(fn, derivative) else z


class StackedMLP:
    """``K`` members of one :class:`~learnact.model.MLP` architecture, stacked.

    Members must have the same Linear shapes; gate parameters present in only
    some members (e.g. the logits of gated members next to fixed ones) are
    zero rows for the others and receive no gradient. Members are reordered
    into segments (:attr:`order` maps stack rows to input positions).

    Args:
        models: The members' initialised models.

    Attributes:
        layout: Where each parameter of each member lives in the flat buffers.
        flat: The parameters; :attr:`params` are named ``(K, *shape)`` views.
        grad: The gradient buffer :func:`~.stacked_backward.backward_` fills;
            :attr:`grads` are its named views.
        segments: The segments, in member order.
        units: Per hidden layer, one :class:`~.segments.Unit` per segment.
        order: ``(K,)`` input position of each stack row.

    Shape:
        - x: ``(K, b, in_features)``
        - logits: ``(K, b, out_features)``
    """

    def __init__(self, models: Sequence[MLP]) -> None:
        if not models:
            raise ValueError("a stack needs at least one model, got models=[]")
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
        order, self.segments = segment_models(models)
        self.order = torch.tensor(order, dtype=torch.long)
        self.hidden = models[0].hidden
        self.layout = FlatLayout(list(shapes), list(shapes.values()), len(models))
        own = [dict(models[i].named_parameters()) for i in order]
        self.flat = self.layout.pack([
            torch.stack([o[name].detach().reshape(-1) if name in o else torch.zeros(size) for o in own])
            for name, size in zip(self.layout.names, self.layout.sizes, strict=True)])
        self._refresh()

    @property
    def n_members(self) -> int:
        """Number of members ``K``."""
        return self.layout.n_members

    def new_buffer(self) -> Tensor:
        """A zero buffer laid out like :attr:`flat` (optimiser state)."""
        return torch.zeros(self.layout.numel)

    def _refresh(self) -> None:
        K = self.layout.n_members
        self.params = self.layout.views(self.flat)
        self.grad = self.new_buffer()
        self.grads = self.layout.views(self.grad)
        p, gr = self.params, self.grads
        self.linears = [(p[f"blocks.{i}.linear.weight"], p[f"blocks.{i}.linear.bias"],
                         gr[f"blocks.{i}.linear.weight"], gr[f"blocks.{i}.linear.bias"])
                        for i in range(len(self.hidden))]
        self.linears.append((p["head.weight"], p["head.bias"], gr["head.weight"], gr["head.bias"]))
        self.units = [[Unit(seg, layer, p, gr, K) for seg in self.segments] for layer in range(len(self.hidden))]
        self.sizes_by_segment = [seg.size for seg in self.segments]
        self.network_context = any(u.kind == "input" and u.source == "network" for us in self.units for u in us)
        self.layer_context = [any(u.kind == "input" and u.source == "layer" for u in us) for us in self.units]

    def select_(self, keep: Tensor, buffers: Sequence[Tensor] = ()) -> list[Tensor]:
        """Keep only stack rows ``keep`` (ascending), e.g. the members still training.

        Gate parameters no remaining member has (the gate kind of members that
        have all stopped) are dropped from the layout.

        Args:
            keep: Rows to keep.
            buffers: Other buffers laid out like :attr:`flat` (optimiser state,
                snapshots), compacted the same way.

        Returns:
            ``buffers``, compacted, in the new layout.
        """
        kept = torch.zeros(self.n_members, dtype=torch.bool)
        kept[keep] = True
        self.segments = compact_segments(self.segments, kept)
        gate_names = {n for seg in self.segments for i, a in enumerate(seg.layers) for n in parameter_names(a, i)}
        names = [n for n in self.layout.names if ".activation." not in n or n in gate_names]
        self.layout, packed = self.layout.compact(keep, names, [self.flat, *buffers])
        self.flat = packed[0]
        self.order = self.order[keep]
        self._refresh()
        return packed[1:]

    def gate_weights(self, unit: Unit, context: Tensor | None, record: list | None = None) -> Tensor:
        """Mixture weights of a gated unit: ``(n, c)``, ``(n, d, c)`` or ``(n, b, c)``.

        ``record``, if given, receives the input-dependent head's context and
        its ReLU output.
        """
        params = unit.params
        assert unit.temperature is not None  # a gated unit
        if unit.kind != "input":
            return softmax_gate(params[0], unit.temperature)
        assert context is not None
        hidden = torch.relu(linear(context, params[0], params[1]))
        if record is not None:
            record.extend((context, hidden))
        return softmax_gate(linear(hidden, params[2], params[3]), unit.temperature)

    def _activate(self, unit: Unit, z: Tensor, x: Tensor | None, h: Tensor | None,
                  records: list | None) -> tuple[Tensor, Tensor | None]:
        fns = unit.functions
        z = member_rows(z)
        if unit.family is not None:
            out, saved = unit.family.forward(z, unit.params, records is not None)
            if records is not None:
                records.append((z, saved))
            return out, None
        if unit.kind == "fixed":
            out = fns[0](candidate_input(fns[0], unit.derivatives[0], z))
            if records is not None:
                records.append((z, (out,), None, None, None, None))
            return out, None
        extra: list | None = [] if records is not None else None
        g = self.gate_weights(unit, x if unit.source == "network" else h, extra)
        w = _broadcast_weights(g, unit.kind)
        if records is None:
            reading = [fn if not reads_stack(fn, d) else (lambda v, f=fn: f(v.contiguous()))
                       for fn, d in zip(fns, unit.derivatives, strict=True)]
            return mix_candidates(z, w, reading), g
        outs = tuple(fn(candidate_input(fn, d, z)) for fn, d in zip(fns, unit.derivatives, strict=True))
        records.append((z, outs, w, g, *(extra or (None, None))))
        return mix_candidates(z, w, [lambda _, v=v: v for v in outs]), g  # type: ignore[misc]  # constant functions

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
