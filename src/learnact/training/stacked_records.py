"""The per-epoch history records of stacked members, as the reference trainer writes them.

Training losses are added up the way the reference loop adds Python floats
(float64, step by step: a cumulative sum), the gate statistics are those of
:func:`~.loop.gate_summary` on the validation set, and each member gets one
:class:`~.history.EpochRecord` per epoch it ran.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from ..model.activations import gate_entropy
from .history import EpochRecord
from .loop import FitResult
from .schedules import recorded_values

__all__ = ["gate_summary", "segment_temperatures", "step_entropies", "write_histories"]


def step_entropies(per_step: list[list[Tensor | None]]) -> Tensor:
    """Each step's summed layer entropies for one segment's members.

    The ``train_entropy`` a lone run records: per layer the mean gate entropy
    (over units or samples), summed over layers. Gates of equal shape in all
    steps are evaluated in one batch (the entropy of each row does not depend
    on the others); per-sample gates, whose batch sizes vary, step by step.

    Args:
        per_step: Per step, per layer, the segment's gate weights (``None`` if fixed).

    Shape:
        - per_step[s][l]: ``(n, c)``, ``(n, d, c)`` or ``(n, b, c)``
        - output: ``(steps, n)``
    """
    total: Tensor | None = None
    for layer in range(len(per_step[0])):
        if per_step[0][layer] is None:
            continue
        gates = cast(list[Tensor], [g[layer] for g in per_step])  # a gated layer has weights at every step
        if all(x.shape == gates[0].shape for x in gates):
            h = gate_entropy(torch.stack(gates))  # (steps, n) or (steps, n, units)
            if h.dim() == 3:
                h = h.mean(dim=2)
        else:
            h = torch.stack([gate_entropy(x).mean(dim=1) for x in gates])
        total = h if total is None else total + h
    assert total is not None
    return total


def gate_summary(g: Tensor | None) -> tuple[Tensor, Tensor] | None:
    """Mean weights and mean entropy per member, as :func:`~.loop.gate_summary` gives them for one model.

    Shape:
        - g: ``(n, c)``, ``(n, d, c)`` or ``(n, b, c)``
        - output: ``(n, c)`` and ``(n,)``
    """
    if g is None:
        return None
    flat = g.reshape(g.shape[0], -1, g.shape[-1])
    return flat.mean(1), gate_entropy(flat).mean(1)


def segment_temperatures(segments: list) -> list[tuple[int, int, list[list[float] | None]]]:
    """Per gated segment ``(start, size, per layer its members' temperatures or None)``, as records hold them."""
    return [(seg.start, seg.size, [recorded_values(T.view(-1).tolist()) if T is not None else None
                                   for T in seg.temperature])
            for seg in segments if seg.gated]


def write_histories(results: list[FitResult], records: list, n_layers: int) -> None:
    """Append one :class:`~.history.EpochRecord` per recorded epoch to each member's result.

    Args:
        results: Per input position, the member's result.
        records: Per epoch ``(members, stats, summaries, temperatures)``: the
            input position of each stack row, ``(K, 4)`` float64 rows
            ``(train_loss, train_task, train_entropy, val_loss)``, per gated
            segment ``(start, size, per-layer gate_summary)``, and
            :func:`segment_temperatures`.
        n_layers: Hidden layers (layers without a gate record ``None``).
    """
    for members, stats, summaries, temperatures in records:
        ids = members.tolist()
        rows = stats.tolist()
        weights: dict[int, list] = {}
        ents: dict[int, list] = {}
        for start, size, per_layer in summaries:
            for layer, summary in enumerate(per_layer):
                if summary is None:
                    continue
                w, e = summary[0].tolist(), summary[1].tolist()
                for j in range(size):
                    r = start + j
                    weights.setdefault(r, [None] * n_layers)[layer] = w[j]
                    ents.setdefault(r, [None] * n_layers)[layer] = e[j]
        temps: dict[int, list] = {}
        for start, size, per_layer in temperatures:
            for layer, values in enumerate(per_layer):
                if values is not None:
                    for j in range(size):
                        temps.setdefault(start + j, [None] * n_layers)[layer] = values[j]
        for r, (mid, row) in enumerate(zip(ids, rows, strict=True)):
            res = results[mid]
            res.history.append(EpochRecord(
                len(res.history) + 1, row[0], row[1], row[2], row[3],
                weights.get(r, [None] * n_layers), ents.get(r, [None] * n_layers), temps.get(r, [None] * n_layers)))
