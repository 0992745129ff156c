"""Train many members (variant x seed) at once as one stacked model.

:func:`fit_stacked` is the reference trainer (:func:`~.loop.fit`) for ``K``
members of one architecture at a time: one :class:`~.stacked.StackedMLP`,
batched matrix products, a hand-derived backward pass of the summed loss
(which gives each member exactly its own gradient, :mod:`.stacked_backward`)
and one Adam update of the whole flat parameter buffer. Each member keeps its
own split, initial values, mini-batch order (:mod:`.streams`), Adam moments,
early-stopping counter and best snapshot; temperature, entropy weight,
maximum epochs, patience and ``min_delta`` are per-member values. Members
that stop (or diverge) leave the stack (compaction), so the work follows the
members still training.

In the reference stream mode every member performs the floating-point
operations its lone reference run performs, in the same order, so histories,
stopping epochs and weights are bit-identical (``scripts/check_equivalence.py``
checks the paper's 75 runs; ``tests/training/test_vectorized.py`` a small
study). Members of different train-set sizes go to different stacks
(:func:`stack_key`); within a stack, every member's batches have the sizes
its lone run's have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..config import TrainConfig
from ..data import Split
from ..model import MLP
from .loop import FitResult
from .stacked import StackedMLP, Tape
from .stacked_backward import backward_
from .stacked_loss import member_task_loss, task_and_gradient
from .stacked_records import gate_summary, step_entropies, write_histories
from .streams import PermutationStreams, StreamMode

__all__ = ["StackedFit", "fit_stacked", "load_parameters_", "stack_key"]

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


def stack_key(cfg: TrainConfig, split: Split) -> tuple:
    """What members must share to train in one stack (besides the architecture).

    Batch size and split sizes fix the batches every step; learning rate and
    weight decay enter the optimiser as scalars.
    """
    return (cfg.batch_size, cfg.lr, cfg.weight_decay, split.X_train.shape, split.X_val.shape, split.n_classes)


@dataclass
class StackedFit:
    """Per-member outcome of :func:`fit_stacked`.

    Attributes:
        results: One :class:`~.loop.FitResult` per member, in input order.
        states: Each member's final (restored best) parameters, in input order.
        member_epochs: Epochs run, summed over members.
        wall_time_s: Wall time of the whole stack.
    """

    results: list[FitResult]
    states: list[dict[str, Tensor]]
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
        raise ValueError("members of a stack must share batch_size, lr, weight_decay and split sizes, got "
                         f"{sorted(map(str, keys))}")
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
    # per-member bookkeeping in float64 numpy: cheaper than tensors for a few values
    rows_np = np.asarray(order)
    lam64 = np.asarray(lam_list, dtype=np.float64)[rows_np]
    max_epochs = np.asarray([c.max_epochs for c in configs])[rows_np]
    patience = np.asarray([c.patience for c in configs])[rows_np]
    min_delta = np.asarray([c.min_delta for c in configs], dtype=np.float64)[rows_np]
    member = rows_np.copy()
    best_val = np.full(K0, math.inf)
    best_epoch = np.zeros(K0, dtype=np.int64)
    wait = np.zeros(K0, dtype=np.int64)
    exp_avg = stack.new_buffer()
    exp_avg_sq = stack.new_buffer()
    denom = stack.new_buffer()
    best = stack.flat.clone()
    results = [FitResult() for _ in range(K0)]
    final: dict[int, dict[str, Tensor]] = {}
    n_layers = len(stack.hidden)
    bounds = list(range(0, n, B))
    sizes = [min(B, n - lo) for lo in bounds]
    sizes64 = np.asarray(sizes, dtype=np.float64)[:, None]
    records: list[tuple[np.ndarray, np.ndarray, list]] = []
    step = 0
    member_epochs = 0
    start = time.perf_counter()
    seg_lam = _segment_lams(stack, lam)
    X_rows = X_all.reshape(-1, X_all.shape[2])
    Y_rows = Y_all.reshape(-1, *Y_all.shape[2:])
    offset = (member_split * n).unsqueeze(1)
    for epoch in range(1, int(max_epochs.max()) + 1):
        K = stack.n_members
        index = streams.next_epoch(epoch) + offset
        tasks: list[Tensor] = []
        seg_gates: list[list[list[Tensor | None]]] = [[] for _ in stack.segments]
        for lo, nb in zip(bounds, sizes, strict=True):
            rows = index[:, lo:lo + nb]
            tape = Tape()
            logits, gates = stack.forward(X_rows[rows], tape)
            with torch.no_grad():
                task, grad_logits = task_and_gradient(logits, Y_rows[rows])
                tasks.append(task)
                for acc, g in zip(seg_gates, gates, strict=True):
                    acc.append(g)
                backward_(stack, tape, grad_logits, seg_lam)
                step += 1
                _adam_step_(stack.flat, stack.grad, exp_avg, exp_avg_sq, denom, step, lr, wd)
        with torch.no_grad():
            v_logits, v_gates = stack.forward(Xv)
            val = member_task_loss(v_logits, Yv).numpy().astype(np.float64)
            summaries = []
            ent_steps = np.zeros((len(bounds), K))
            for seg, g, per_step in zip(stack.segments, v_gates, seg_gates, strict=True):
                if seg.gated:
                    summaries.append((seg.start, seg.size, [gate_summary(x) for x in g]))
                    ent_steps[:, seg.rows] = step_entropies(per_step).numpy()
            task_steps = torch.stack(tasks).numpy().astype(np.float64)
        # the reference adds float(loss) * batch size step by step: a sequential (cumulative) sum
        sum_task = np.cumsum(task_steps * sizes64, axis=0)[-1]
        sum_ent = np.cumsum(ent_steps * sizes64, axis=0)[-1]
        train_obj = (sum_task + lam64 * sum_ent) / n
        records.append((member.copy(), np.stack([train_obj, sum_task / n, sum_ent / n, val], axis=1), summaries))
        member_epochs += K
        diverged = ~(np.isfinite(val) & np.isfinite(train_obj))
        improved = (val < best_val - min_delta) & ~diverged
        best_val = np.where(improved, val, best_val)
        best_epoch = np.where(improved, epoch, best_epoch)
        wait = np.where(improved, 0, wait + 1)
        if improved.any():
            stack.layout.put_rows_(best, torch.from_numpy(improved), stack.flat)
        stop = (~improved & (wait >= patience)) | (epoch >= max_epochs) | diverged
        if not stop.any():
            continue
        for r in np.flatnonzero(stop).tolist():
            mid = int(member[r])
            done = int(best_epoch[r]) > 0
            final[mid] = stack.layout.member_state(best if done else stack.flat, r)
            res = results[mid]
            res.best_epoch = int(best_epoch[r])
            res.epochs_run = epoch
            res.diverged_epoch = epoch if bool(diverged[r]) else None
            res.best_val_loss = float(best_val[r]) if done else float("nan")
        keep_np = np.flatnonzero(~stop)
        if keep_np.size == 0:
            break
        keep = torch.from_numpy(keep_np)
        exp_avg, exp_avg_sq, best = stack.select_(keep, (exp_avg, exp_avg_sq, best))
        denom = torch.empty_like(exp_avg)
        streams.select_(keep)
        member, lam64 = member[keep_np], lam64[keep_np]
        max_epochs, patience, min_delta = max_epochs[keep_np], patience[keep_np], min_delta[keep_np]
        best_val, best_epoch, wait = best_val[keep_np], best_epoch[keep_np], wait[keep_np]
        lam = lam[keep]
        member_split, Xv, Yv = member_split[keep], Xv[keep], Yv[keep]
        offset = (member_split * n).unsqueeze(1)
        seg_lam = _segment_lams(stack, lam)
    wall = time.perf_counter() - start
    write_histories(results, records, n_layers)
    states = []
    for mid, (model, res) in enumerate(zip(models, results, strict=True)):
        own = dict(model.named_parameters())
        state = {name: t for name, t in final[mid].items() if name in own}
        load_parameters_(model, state)
        states.append(state)
        res.train_time_s = wall * res.epochs_run / max(member_epochs, 1)
    return StackedFit(results, states, member_epochs, wall)


def load_parameters_(model: MLP, state: dict[str, Tensor]) -> MLP:
    """Copy named parameter values into ``model`` (all of its parameters must be given)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(state[name])
    return model


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


def _adam_step_(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, denom: Tensor, step: int,
                lr: float, weight_decay: float) -> None:
    """``torch.optim.Adam``'s update (L2 in the gradient), operation for operation.

    The same element-wise operations, in the same order, as the optimiser's
    single-tensor path applies to each parameter, here to the whole flat
    buffer at once; element-wise results do not depend on the layout, so each
    member's values match a lone run's bit for bit. ``grad`` is overwritten
    (with the weight-decayed gradient) and ``denom`` is scratch space.
    """
    if weight_decay != 0:
        grad.add_(param, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - _BETA1)
    exp_avg_sq.mul_(_BETA2).addcmul_(grad, grad, value=1 - _BETA2)
    bias_correction1 = 1 - _BETA1 ** step
    bias_correction2 = 1 - _BETA2 ** step
    step_size = lr / bias_correction1
    torch.sqrt(exp_avg_sq, out=denom).div_(bias_correction2 ** 0.5).add_(_EPS)
    param.addcdiv_(exp_avg, denom, value=-step_size)


