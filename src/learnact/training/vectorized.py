"""Train many members (variant x seed) at once as one stacked model.

:func:`fit_stacked` is the reference trainer (:func:`~.loop.fit`) for ``K``
members of one architecture at a time: one :class:`~.stacked.StackedMLP`,
batched matrix products, one autograd pass for the summed loss (which gives
each member exactly its own gradient), and one Adam update of the whole flat
parameter buffer. Each member keeps its own split, initial values, mini-batch
order (:mod:`.streams`), Adam moments, early-stopping counter and best
snapshot; temperature, entropy weight, maximum epochs, patience and
``min_delta`` are per-member tensors. Members that stop leave the stack
(compaction), so the work follows the members still training.

In the reference stream mode every member performs the floating-point
operations its lone reference run performs, in the same order, so histories,
stopping epochs and weights are bit-identical (see ``scripts/check_equivalence.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import TrainConfig
from ..data import Split
from ..model import MLP
from ..model.activations import gate_entropy
from .history import EpochRecord
from .loop import FitResult
from .stacked import StackedMLP, member_rows
from .streams import PermutationStreams, StreamMode

__all__ = ["StackedFit", "fit_stacked", "member_task_loss", "stack_key"]

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


class _MemberBCE(torch.autograd.Function):
    """Per-member mean binary cross-entropy, differentiated as a lone model's loss is.

    A lone ``binary_cross_entropy(p, y)`` (mean) backpropagates
    ``(p - y) / max((1 - p) p, eps)`` and then divides by the batch size; the
    backward here performs those two steps in that order.
    """

    @staticmethod
    def forward(ctx, prob: Tensor, target: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(prob, target)
        return F.binary_cross_entropy(prob, target, reduction="none").mean(dim=(1, 2))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        prob, target = ctx.saved_tensors
        g = torch.ops.aten.binary_cross_entropy_backward(
            grad.view(-1, 1, 1).expand_as(prob), prob, target, None, 0)
        g.div_(prob.shape[1] * prob.shape[2])
        return g, None


def member_task_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Each member's task loss, as :func:`~.objective.task_loss` computes it for one model.

    Shape:
        - logits: ``(K, b, 1)`` (binary) or ``(K, b, n_classes)``
        - target: ``(K, b, 1)`` float (binary) or ``(K, b)`` long
        - output: ``(K,)``
    """
    if logits.shape[-1] == 1:
        return _MemberBCE.apply(torch.sigmoid(member_rows(logits)), target)
    K, b, c = logits.shape
    return F.cross_entropy(logits.reshape(K * b, c), target.reshape(K * b), reduction="none").view(K, b).mean(1)


def _segment_entropy(gates: Sequence[Tensor | None]) -> Tensor | None:
    """Sum over gated layers of each member's mean gate entropy (``(n,)``), or ``None``."""
    total: Tensor | None = None
    for g in gates:
        if g is None:
            continue
        h = gate_entropy(g)
        if h.dim() > 1:
            h = h.mean(dim=1)
        total = h if total is None else total + h
    return total


def stack_key(cfg: TrainConfig, split: Split) -> tuple:
    """What members must share to train in one stack (besides the architecture)."""
    return (cfg.batch_size, cfg.lr, cfg.weight_decay, split.X_train.shape, split.X_val.shape, split.n_classes)


@dataclass
class StackedFit:
    """Per-member outcome of :func:`fit_stacked`.

    Attributes:
        results: One :class:`~.loop.FitResult` per member, in input order.
        member_epochs: Epochs run, summed over members.
        wall_time_s: Wall time of the whole stack.
    """

    results: list[FitResult]
    member_epochs: int
    wall_time_s: float


def _targets(ys: Sequence[np.ndarray], binary: bool) -> Tensor:
    t = torch.stack([torch.as_tensor(np.asarray(y)) for y in ys])
    return t.to(torch.float32).unsqueeze(-1) if binary else t.to(torch.long)


def fit_stacked(
    models: Sequence[MLP],
    splits: Sequence[Split],
    configs: Sequence[TrainConfig],
    *,
    generators: Sequence[torch.Generator] | None = None,
    seeds: Sequence[int] | None = None,
    mode: StreamMode = "reference",
) -> StackedFit:
    """Train ``K`` members at once; each model ends holding its best weights.

    Args:
        models: Freshly initialised members (one architecture; see
            :class:`~.stacked.StackedMLP`). Updated in place.
        splits: Each member's data split (equal train and validation sizes).
        configs: Each member's training settings; ``batch_size``, ``lr`` and
            ``weight_decay`` must agree (:func:`stack_key`), the rest may differ.
        generators: Reference mode: each member's generator, past its
            initialisation draws, as :func:`~.loop.fit` receives it.
        seeds: Fast mode: each member's seed.
        mode: ``"reference"`` (bit-identical to :func:`~.loop.fit`) or
            ``"fast"`` (see :mod:`.streams`).

    Raises:
        ValueError: Lengths differ, or members cannot share a stack (named).
    """
    K0 = len(models)
    if not (len(splits) == len(configs) == K0) or K0 == 0:
        raise ValueError(f"need one split and one config per model, got {K0} models, {len(splits)} splits, "
                         f"{len(configs)} configs")
    keys = {stack_key(c, s) for c, s in zip(configs, splits, strict=True)}
    if len(keys) > 1:
        raise ValueError(f"members of a stack must share batch_size, lr, weight_decay and split sizes, got {sorted(map(str, keys))}")
    cfg0 = configs[0]
    B, lr, wd = cfg0.batch_size, cfg0.lr, cfg0.weight_decay
    stack = StackedMLP(models)
    order = stack.order.tolist()  # stack row -> input position

    def by_row(values: Sequence, dtype: torch.dtype) -> Tensor:
        return torch.tensor([values[i] for i in order], dtype=dtype)

    # data: one copy per distinct split
    split_index: dict[int, int] = {}
    uniq: list[Split] = []
    for s in splits:
        if id(s) not in split_index:
            split_index[id(s)] = len(uniq)
            uniq.append(s)
    binary = uniq[0].n_classes == 2
    X_all = torch.stack([torch.from_numpy(s.X_train) for s in uniq])
    Y_all = _targets([s.y_train for s in uniq], binary)
    member_split = by_row([split_index[id(s)] for s in splits], torch.long)
    Xv = torch.stack([torch.from_numpy(s.X_val) for s in uniq])[member_split]
    Yv = _targets([s.y_val for s in uniq], binary)[member_split]
    n = int(X_all.shape[1])
    if mode == "reference":
        if generators is None or len(generators) != K0:
            raise ValueError("reference mode needs one generator per member (past its initialisation draws)")
        streams = PermutationStreams(n, mode, generators=[generators[i] for i in order])
    else:
        if seeds is None or len(seeds) != K0:
            raise ValueError("fast mode needs one seed per member")
        streams = PermutationStreams(n, mode, seeds=[seeds[i] for i in order])

    lam_list = [c.entropy_weight for c in configs]
    lam = by_row(lam_list, torch.float32)
    lam64 = by_row(lam_list, torch.float64)
    max_epochs = by_row([c.max_epochs for c in configs], torch.long)
    patience = by_row([c.patience for c in configs], torch.long)
    min_delta = by_row([c.min_delta for c in configs], torch.float64)
    member = stack.order.clone()
    best_val = torch.full((K0,), math.inf, dtype=torch.float64)
    best_epoch = torch.zeros(K0, dtype=torch.long)
    wait = torch.zeros(K0, dtype=torch.long)
    exp_avg = stack.new_buffer()
    exp_avg_sq = stack.new_buffer()
    best = stack.flat.clone()
    results = [FitResult() for _ in range(K0)]
    final: dict[int, dict[str, Tensor]] = {}
    n_layers = len(stack.hidden)
    bounds = list(range(0, n, B))
    sizes = [min(B, n - lo) for lo in bounds]
    sizes64 = torch.tensor(sizes, dtype=torch.float64)
    task_buf = torch.zeros(len(bounds), K0)
    ent_buf = torch.zeros(len(bounds), K0)
    records: list[tuple[Tensor, Tensor, list[tuple[int, int, list]]]] = []
    step = 0
    member_epochs = 0
    start = time.perf_counter()
    leaves = stack.leaves()
    seg_lam = _segment_lams(stack, lam)
    for epoch in range(1, int(max_epochs.max()) + 1):
        K = stack.n_members
        perm = streams.next_epoch(epoch)
        rows = member_split.unsqueeze(1)
        Xp = X_all[rows, perm]
        Yp = Y_all[rows, perm]
        for j, (lo, nb) in enumerate(zip(bounds, sizes, strict=True)):
            logits, gates = stack.forward(Xp[:, lo:lo + nb])
            task = member_task_loss(logits, Yp[:, lo:lo + nb])
            total = task.sum()
            for seg, g, sl in zip(stack.segments, gates, seg_lam, strict=True):
                if not seg.gated:
                    continue
                ent = _segment_entropy(g)
                assert ent is not None
                if sl is not None:
                    lam_s, on = sl
                    term = lam_s * ent if on is None else torch.where(on, lam_s * ent, 0.0)
                    total = total + term.sum()
                ent_buf[j, seg.start:seg.start + seg.size] = ent.detach()
            task_buf[j, :K] = task.detach()
            grads = torch.autograd.grad(total, leaves, allow_unused=True, materialize_grads=True)
            step += 1
            with torch.no_grad():
                _adam_step_(stack.flat, stack.flatten_grads(grads), exp_avg, exp_avg_sq, step, lr, wd)
        with torch.no_grad():
            v_logits, v_gates = stack.forward(Xv)
            val = member_task_loss(v_logits, Yv).double()
            summaries = []
            for seg, g in zip(stack.segments, v_gates, strict=True):
                if seg.gated:
                    summaries.append((seg.start, seg.size, [_gate_summary(x) for x in g]))
        sum_task = torch.zeros(K, dtype=torch.float64)
        sum_ent = torch.zeros(K, dtype=torch.float64)
        for j in range(len(bounds)):
            sum_task += task_buf[j, :K].double() * sizes64[j]
            sum_ent += ent_buf[j, :K].double() * sizes64[j]
        ent_buf.zero_()
        records.append((member.clone(), torch.stack([(sum_task + lam64 * sum_ent) / n, sum_task / n,
                                                     sum_ent / n, val], dim=1), summaries))
        member_epochs += K
        improved = val < best_val - min_delta
        best_val = torch.where(improved, val, best_val)
        best_epoch = torch.where(improved, epoch, best_epoch)
        wait = torch.where(improved, 0, wait + 1)
        if bool(improved.any()):
            stack.put_rows_(best, improved.nonzero().squeeze(1), stack.flat)
        stop = (~improved & (wait >= patience)) | (epoch >= max_epochs)
        if not bool(stop.any()):
            continue
        for r in stop.nonzero().squeeze(1).tolist():
            mid = int(member[r])
            done = int(best_epoch[r]) > 0
            final[mid] = stack.member_state(best if done else stack.flat, r)
            res = results[mid]
            res.best_epoch = int(best_epoch[r])
            res.epochs_run = epoch
            res.best_val_loss = float(best_val[r]) if done else float("nan")
        keep = (~stop).nonzero().squeeze(1)
        if keep.numel() == 0:
            break
        exp_avg, exp_avg_sq, best = (stack.select_buffer(t, keep) for t in (exp_avg, exp_avg_sq, best))
        stack.select_(keep)
        streams.select_(keep)
        leaves = stack.leaves()
        member, lam, lam64 = member[keep], lam[keep], lam64[keep]
        max_epochs, patience, min_delta = max_epochs[keep], patience[keep], min_delta[keep]
        best_val, best_epoch, wait = best_val[keep], best_epoch[keep], wait[keep]
        member_split, Xv, Yv = member_split[keep], Xv[keep], Yv[keep]
        seg_lam = _segment_lams(stack, lam)
    wall = time.perf_counter() - start
    _write_histories(results, records, n_layers)
    for mid, (model, res) in enumerate(zip(models, results, strict=True)):
        state = final[mid]
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(state[name])
        res.train_time_s = wall * res.epochs_run / max(member_epochs, 1)
    return StackedFit(results, member_epochs, wall)


def _segment_lams(stack: StackedMLP, lam: Tensor) -> list[tuple[Tensor, Tensor | None] | None]:
    """Per segment: ``None`` if no member has an entropy term, else ``(lam, mask or None)``."""
    out: list[tuple[Tensor, Tensor | None] | None] = []
    for seg in stack.segments:
        lam_s = lam[seg.start:seg.start + seg.size]
        on = lam_s != 0
        if not seg.gated or not bool(on.any()):
            out.append(None)
        else:
            out.append((lam_s, None if bool(on.all()) else on))
    return out


def _gate_summary(g: Tensor | None) -> tuple[Tensor, Tensor] | None:
    """Mean weights and mean entropy per member, as :func:`~.loop.gate_summary` for one model."""
    if g is None:
        return None
    flat = g.reshape(g.shape[0], -1, g.shape[-1])
    return flat.mean(1), gate_entropy(flat).mean(1)


def _adam_step_(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step: int, lr: float,
                weight_decay: float) -> None:
    """``torch.optim.Adam``'s update (L2 in the gradient), operation for operation.

    The same element-wise operations, in the same order, as the optimiser's
    single-tensor path applies to each parameter, here to the whole flat
    buffer at once; element-wise results do not depend on the layout, so each
    member's values match a lone run's bit for bit.
    """
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - _BETA1)
    exp_avg_sq.mul_(_BETA2).addcmul_(grad, grad, value=1 - _BETA2)
    bias_correction1 = 1 - _BETA1 ** step
    bias_correction2 = 1 - _BETA2 ** step
    step_size = lr / bias_correction1
    denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(_EPS)
    param.addcdiv_(exp_avg, denom, value=-step_size)


def _write_histories(results: list[FitResult], records: list, n_layers: int) -> None:
    for members, stats, summaries in records:
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
        for r, (mid, row) in enumerate(zip(ids, rows, strict=True)):
            res = results[mid]
            res.history.append(EpochRecord(
                len(res.history) + 1, row[0], row[1], row[2], row[3],
                weights.get(r, [None] * n_layers), ents.get(r, [None] * n_layers)))
