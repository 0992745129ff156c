"""Train many members (variant x seed) at once as one stacked model.

:func:`fit_stacked` is the reference trainer (:func:`~.loop.fit`) for ``K``
members of one architecture at a time (a :class:`StackedTrainer`, whose step,
:class:`PythonStep` or :class:`NativeStep`, trains an epoch): one
:class:`~.stacked.StackedMLP`, batched matrix products, a hand-derived backward pass of the summed loss
(which gives each member exactly its own gradient, :mod:`.stacked_backward`)
and one Adam update of the whole flat parameter buffer. Each member keeps its
own split, initial values, mini-batch order (:mod:`.streams`), Adam moments,
early-stopping counter and best snapshot; temperature (and its schedule,
:mod:`.schedules`), entropy weight, maximum epochs, patience and
``min_delta`` are per-member values. Members
that stop (or diverge) leave the stack (compaction), so the work follows the
members still training. When a core falls idle (its worker process has no
stack left), a running stack forks at an epoch boundary and a helper process
takes over part of its members (:mod:`.worksharing`), whole data splits
(seeds) first, since those tend to stop together.

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
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from ..config import TrainConfig
from ..data import Split
from ..model import MLP
from . import native as native_step
from . import worksharing
from .loop import FitResult, all_finite, is_activation_parameter
from .schedules import TemperatureSchedule, set_temperature_
from .stacked import StackedMLP, Tape
from .stacked_backward import backward_
from .stacked_loss import member_task_loss, task_and_gradient
from .stacked_records import gate_summary, segment_temperatures, step_entropies, write_histories
from .streams import PermutationStreams, StreamMode

__all__ = [
    "EpochLosses",
    "NativeStep",
    "PythonStep",
    "StackStep",
    "StackedFit",
    "StackedTrainer",
    "final_temperature_",
    "fit_stacked",
    "load_parameters_",
    "stack_key",
]

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


def stack_key(cfg: TrainConfig, split: Split) -> tuple:
    """What members must share to train in one stack (besides the architecture).

    Batch size and split sizes fix the batches every step; learning rate and
    weight decay (and whether it applies to the activations) enter the
    optimiser as scalars.
    """
    return (cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.weight_decay_activations, split.X_train.shape,
            split.X_val.shape, split.n_classes)


@dataclass
class StackedFit:
    """Per-member outcome of :func:`fit_stacked`.

    Attributes:
        results: One :class:`~.loop.FitResult` per member, in input order.
        states: Each member's final (restored best) parameters, in input order.
        member_epochs: Epochs run, summed over members.
        wall_time_s: Wall time of the whole stack.
        helpers: Forked helper processes that took over part of the
            members (:mod:`.worksharing`), their own helpers included.
    """

    results: list[FitResult]
    states: list[dict[str, Tensor]]
    member_epochs: int
    wall_time_s: float
    helpers: int = 0


def _targets(ys: Sequence[np.ndarray], binary: bool) -> Tensor:
    """Each member's targets: float ``(K, b, 1)`` (binary), float ``(K, b)`` (regression) or long ``(K, b)``."""
    t = torch.stack([torch.as_tensor(np.asarray(y)) for y in ys])
    if binary:
        return t.to(torch.float32).unsqueeze(-1)
    return t.to(torch.float32) if t.is_floating_point() else t.to(torch.long)


def fit_stacked(
    models: Sequence[MLP],
    splits: Sequence[Split],
    configs: Sequence[TrainConfig],
    *,
    generators: Sequence[torch.Generator] | None = None,
    seeds: Sequence[int] | None = None,
    mode: StreamMode = "reference",
    shadows: Sequence[tuple[TrainConfig, int]] = (),
    native: bool | None = None,
    schedules: Sequence[TemperatureSchedule | None] | None = None,
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
        shadows: Runs identical to a member except for a shorter (or equal)
            ``max_epochs`` and ``patience``, as ``(config, member position)``:
            they follow the member's trajectory without training again and
            stop by their own rule, taking the member's best snapshot at that
            epoch; their results follow the members' in the returned lists.
        native: Use the C++ step (:mod:`.native`; same results): ``None``
            where it is loaded and supports the stack, ``True`` always (an
            error where it cannot), ``False`` never.
        schedules: Each member's gate temperature schedule (:mod:`.schedules`),
            ``None`` for a member whose temperature stays put; as
            :func:`~.loop.fit` receives it. Shadows follow their member's.

    Raises:
        ValueError: Lengths differ, members cannot share a stack, a shadow
            outlasts its member (named), or ``native=True`` where the native
            step is unavailable or does not support the stack.
    """
    _check_members(models, splits, configs, shadows, schedules)
    trainer = StackedTrainer(models, splits, configs, generators=generators, seeds=seeds, mode=mode,
                             shadows=shadows, native=native, schedules=schedules)
    return trainer.run()


def _check_members(models: Sequence[MLP], splits: Sequence[Split], configs: Sequence[TrainConfig],
                   shadows: Sequence[tuple[TrainConfig, int]],
                   schedules: Sequence[TemperatureSchedule | None] | None) -> None:
    """Raise ValueError unless the members can share a stack (see :func:`fit_stacked`)."""
    K0 = len(models)
    if not (len(splits) == len(configs) == K0) or K0 == 0:
        raise ValueError(f"need one split and one config per model, got {K0} models, {len(splits)} splits, "
                         f"{len(configs)} configs")
    keys = {stack_key(c, s) for c, s in zip(configs, splits, strict=True)}
    if len(keys) > 1:
        raise ValueError("members of a stack must share batch_size, lr, weight_decay and split sizes, got "
                         f"{sorted(map(str, keys))}")
    for cfg, host in shadows:
        mine = configs[host] if 0 <= host < K0 else None
        if mine is None or cfg.max_epochs > mine.max_epochs or cfg.patience > mine.patience \
                or cfg.model_copy(update={"max_epochs": mine.max_epochs, "patience": mine.patience}) != mine:
            raise ValueError(f"a shadow must equal its member {host} up to a shorter max_epochs and patience, "
                             f"got {cfg!r}")
    if schedules is not None and len(schedules) != K0:
        raise ValueError(f"need one schedule (or None) per model, got {len(schedules)} for {K0} models")


@dataclass
class EpochLosses:
    """What one epoch of a stacked step measured, per member row.

    Attributes:
        task: The task loss of every mini-batch, ``(steps, K)`` float64.
        entropy: The mean gate entropy of every mini-batch, ``(steps, K)``
            float64 (zeros where a member has no gate).
        val: The validation loss after the epoch, ``(K,)`` float64.
        summaries: Each gated segment's ``(start row, rows, per-layer gate
            summaries)`` on the validation set.
    """

    task: np.ndarray
    entropy: np.ndarray
    val: np.ndarray
    summaries: list[tuple[int, int, list[Any]]]


class StackStep(Protocol):
    """One epoch of a stack: every mini-batch's forward, backward and Adam update, then validation."""

    def epoch(self, index: Tensor, first_step: int) -> EpochLosses:
        """Train on the rows of ``index`` (``(K, n)``, each member's batch order) and validate.

        ``first_step`` is the Adam step count before the epoch; batch ``i`` is step ``first_step + i + 1``.
        """
        ...


class PythonStep:
    """The stacked step in PyTorch: :meth:`StackedMLP.forward`, the hand-derived backward pass
    (:mod:`.stacked_backward`) and :func:`_adam_step_`; every activation kind and family."""

    def __init__(self, trainer: StackedTrainer) -> None:
        self.t = trainer

    def epoch(self, index: Tensor, first_step: int) -> EpochLosses:
        t, stack = self.t, self.t.stack
        K = stack.n_members
        tasks: list[Tensor] = []
        seg_gates: list[list[list[Tensor | None]]] = [[] for _ in stack.segments]
        with torch.no_grad():
            for i, (lo, nb) in enumerate(zip(t.bounds, t.sizes, strict=True)):
                batch = index[:, lo:lo + nb].reshape(-1)  # index_select: cheaper than advanced indexing
                tape = Tape()
                logits, gates = stack.forward(t.X_rows.index_select(0, batch).view(K, nb, -1), tape)
                task, grad_logits = task_and_gradient(logits, t.Y_rows.index_select(0, batch).view(K, nb, *t.y_tail))
                tasks.append(task)
                for acc, g in zip(seg_gates, gates, strict=True):
                    acc.append(g)
                backward_(stack, tape, grad_logits, t.seg_lam)
                _adam_step_(stack.flat, stack.grad, t.exp_avg, t.exp_avg_sq, t.denom, first_step + i + 1, t.lr,
                            t.wd, t.decay)
            v_logits, v_gates = stack.forward(t.rows.Xv)
            val = member_task_loss(v_logits, t.rows.Yv).numpy().astype(np.float64)
            summaries = []
            ent_steps = np.zeros((len(t.bounds), K))
            for seg, g, per_step in zip(stack.segments, v_gates, seg_gates, strict=True):
                if seg.gated:
                    summaries.append((seg.start, seg.size, [gate_summary(x) for x in g]))
                    ent_steps[:, seg.rows] = step_entropies(per_step).numpy()
            task_steps = torch.stack(tasks).numpy().astype(np.float64)
        return EpochLosses(task_steps, ent_steps, val, summaries)


class NativeStep:
    """The stacked step in C++ (:mod:`.native`): the same operations as :class:`PythonStep`, one call per batch.

    It holds the trainer's buffers as they are when it is made: the trainer makes a new one after compaction.
    """

    def __init__(self, trainer: StackedTrainer) -> None:
        t = self.t = trainer
        self.stack = native_step.NativeStack(t.stack, t.seg_lam, (t.exp_avg, t.exp_avg_sq, t.denom), t.lr, t.wd,
                                             (*t.sizes, t.rows.Xv.shape[1]))

    def epoch(self, index: Tensor, first_step: int) -> EpochLosses:
        t = self.t
        tasks: list[Tensor] = []
        ents: list[Tensor] = []
        with torch.no_grad():
            for i, (lo, nb) in enumerate(zip(t.bounds, t.sizes, strict=True)):
                task, ent = self.stack.step(t.X_rows, t.Y_rows, index, lo, nb, first_step + i + 1)
                tasks.append(task)
                ents.append(ent)
            val_loss, summaries = self.stack.evaluate(t.rows.Xv, t.rows.Yv)
            val = val_loss.numpy().astype(np.float64)
            ent_steps = torch.stack(ents).numpy().astype(np.float64)
            task_steps = torch.stack(tasks).numpy().astype(np.float64)
        return EpochLosses(task_steps, ent_steps, val, summaries)


class StackedTrainer:
    """The training of one stack (:func:`fit_stacked` makes one and calls :meth:`run`).

    Each epoch: the step (:class:`PythonStep` or :class:`NativeStep`) trains
    every member on its batches; :meth:`_record` keeps the epoch's record;
    :meth:`_stop` applies early stopping and divergence and collects the
    final states of the members that end; :meth:`_share` forks a helper for
    part of the members when a core is idle (:mod:`.worksharing`); and
    :meth:`_compact` drops the members that ended from every buffer.
    """

    def __init__(
        self,
        models: Sequence[MLP],
        splits: Sequence[Split],
        configs: Sequence[TrainConfig],
        *,
        generators: Sequence[torch.Generator] | None,
        seeds: Sequence[int] | None,
        mode: StreamMode,
        shadows: Sequence[tuple[TrainConfig, int]],
        native: bool | None,
        schedules: Sequence[TemperatureSchedule | None] | None,
    ) -> None:
        K0 = len(models)
        self.models, self.shadows, self.schedules = models, shadows, schedules
        cfg0 = configs[0]
        self.lr, self.wd = cfg0.lr, cfg0.weight_decay
        self.decay_all = cfg0.weight_decay_activations or self.wd == 0
        stack = self.stack = StackedMLP(models)
        order = stack.order.tolist()  # stack row -> input position

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
        n = self.n = int(X_all.shape[1])
        if mode == "reference":
            if generators is None or len(generators) != K0:
                raise ValueError("reference mode needs one generator per member (past its initialisation draws)")
            self.streams = PermutationStreams(n, mode, generators=[generators[i] for i in order])
        else:
            if seeds is None or len(seeds) != K0:
                raise ValueError("fast mode needs one seed per member")
            self.streams = PermutationStreams(n, mode, seeds=[seeds[i] for i in order])
        self.rows = _Rows(order, configs, [split_index[id(s)] for s in splits], uniq, binary, n,
                          [None] * K0 if schedules is None else list(schedules))
        self.exp_avg = stack.new_buffer()
        self.exp_avg_sq = stack.new_buffer()
        self.denom = stack.new_buffer()
        self.best = stack.flat.clone()
        self.results = [FitResult() for _ in range(K0 + len(shadows))]
        self.followers = _Shadows(shadows, K0)
        self.final: dict[int, dict[str, Tensor]] = {}
        self.ended_here: list[int] = []  # members this process ended (a forked helper sends back only these)
        self.children: list[tuple[int, int]] = []
        self.bounds = list(range(0, n, cfg0.batch_size))
        self.sizes = [min(cfg0.batch_size, n - lo) for lo in self.bounds]
        self.sizes64 = np.asarray(self.sizes, dtype=np.float64)[:, None]
        self.records: list[tuple[Any, ...]] = []
        self.step = 0
        self.member_epochs = 0
        self.helpers = 0
        self.inherited_epochs = 0  # in a helper: the member-epochs its parent counts
        self.share = worksharing.current()
        self.helper = False  # whether this process is a forked helper
        self.seg_lam = _segment_lams(stack, self.rows.lam)
        self.X_rows = X_all.reshape(-1, X_all.shape[2])
        self.Y_rows = Y_all.reshape(-1, *Y_all.shape[2:])
        self.y_tail = tuple(Y_all.shape[2:])
        self.use_native = (native is not False and self.decay_all and native_step.load()
                           and native_step.supports(stack, binary))
        self.decay = None if self.decay_all else _decay_spans(stack)
        self.temperatures = segment_temperatures(stack.segments)
        if native and not self.use_native:
            raise ValueError("native=True, but the native step is unavailable or does not support this stack")
        self.stepper: StackStep = self._make_step()

    def _make_step(self) -> StackStep:
        return NativeStep(self) if self.use_native else PythonStep(self)

    def run(self) -> StackedFit:
        """Train until every member has stopped; the members' models end holding their best weights."""
        start = time.perf_counter()
        try:
            for epoch in range(1, int(self.rows.stopping.max_epochs.max()) + 1):
                if self.rows.scheduled:
                    _set_temperatures_(self.stack, self.rows, epoch)
                    self.temperatures = segment_temperatures(self.stack.segments)
                index = self.streams.next_epoch(epoch) + self.rows.offset
                losses = self.stepper.epoch(index, self.step)
                self.step += len(self.bounds)
                train_obj = self._record(losses)
                keep = self._stop(epoch, losses.val, train_obj)
                if keep is not None and keep.size == 0:
                    break
                keep = self._share(keep)
                if keep is not None:
                    self._compact(keep)
            self._finish(time.perf_counter() - start)
        except BaseException:
            if self.helper:
                worksharing.send_error()
            raise
        return self._result(time.perf_counter() - start)

    def _record(self, losses: EpochLosses) -> np.ndarray:
        """Keep the epoch's record (training objective, task loss, entropy, validation loss, gates); the objective.

        The reference adds ``float(loss) * batch size`` step by step: a sequential (cumulative) sum.
        """
        sum_task = np.cumsum(losses.task * self.sizes64, axis=0)[-1]
        sum_ent = np.cumsum(losses.entropy * self.sizes64, axis=0)[-1]
        train_obj = (sum_task + self.rows.lam64 * sum_ent) / self.n
        self.records.append((self.rows.member.copy(),
                             np.stack([train_obj, sum_task / self.n, sum_ent / self.n, losses.val], axis=1),
                             losses.summaries, self.temperatures))
        self.member_epochs += len(losses.val)
        return train_obj

    def _stop(self, epoch: int, val: np.ndarray, train_obj: np.ndarray) -> np.ndarray | None:
        """Early stopping and divergence: snapshot improved members, end stopped ones (and their shadows).

        Returns:
            The rows that train on, or ``None`` when every member trains on.
        """
        stack, rows = self.stack, self.rows
        diverged = ~(np.isfinite(val) & np.isfinite(train_obj)) | _nonfinite_rows(stack)
        improved, stop = rows.stopping.step(epoch, val, diverged)
        if improved.any():
            stack.layout.put_rows_(self.best, torch.from_numpy(improved), stack.flat)
        for sid, r, done in self.followers.step(epoch, rows.member, val, diverged):
            # the member's best snapshot is the shadow's: same history, same min_delta
            self.final[sid] = stack.layout.member_state(self.best if done else stack.flat, r)
            self.ended_here.append(sid)
        if not stop.any():
            return None
        for r in np.flatnonzero(stop).tolist():
            mid = int(rows.member[r])
            done = int(rows.stopping.best_epoch[r]) > 0
            self.final[mid] = stack.layout.member_state(self.best if done else stack.flat, r)
            self.ended_here.append(mid)
            res = self.results[mid]
            res.best_epoch = int(rows.stopping.best_epoch[r])
            res.epochs_run = epoch
            res.diverged_epoch = epoch if bool(diverged[r]) else None
            res.best_val_loss = float(rows.stopping.best_val[r]) if done else float("nan")
        return np.flatnonzero(~stop)

    def _share(self, keep: np.ndarray | None) -> np.ndarray | None:
        """When a core is idle, fork a helper that takes over part of the members; the rows this process keeps."""
        alive = keep if keep is not None else np.arange(self.stack.n_members)
        share = self.share
        if share is None or alive.size < 2 * _MIN_PART or not share.try_claim():
            return keep
        kept, given = _split_members(self.stack, alive, self.rows.split.numpy())
        child = worksharing.fork_child()
        if child is None:  # the helper: its own children and results from here on
            self.helper = True
            self.children, self.ended_here, self.helpers = [], [], 0
            self.inherited_epochs = self.member_epochs
            self.followers.forget()
            return given
        self.children.append(child)
        self.helpers += 1
        return kept

    def _compact(self, keep_np: np.ndarray) -> None:
        """Keep only the stack rows ``keep_np``, in every buffer, and make a step for the smaller stack."""
        keep = torch.from_numpy(keep_np)
        self.exp_avg, self.exp_avg_sq, self.best = self.stack.select_(keep, (self.exp_avg, self.exp_avg_sq,
                                                                               self.best))
        self.denom = torch.empty_like(self.exp_avg)
        self.streams.select_(keep)
        self.rows.take_(keep_np, keep)
        self.seg_lam = _segment_lams(self.stack, self.rows.lam)
        self.decay = None if self.decay_all else _decay_spans(self.stack)
        self.temperatures = segment_temperatures(self.stack.segments)
        self.stepper = self._make_step()

    def _finish(self, wall: float) -> None:
        """Histories and time shares; then the helpers' results in, or (in a helper) this process's out."""
        results = self.results
        write_histories(results, self.records, len(self.stack.hidden))
        self.followers.write_histories(results)
        for res in results:
            res.train_time_s = wall * res.epochs_run / max(self.member_epochs, 1)
        if self.children:
            assert self.share is not None
            with self.share.waiting():
                for child in self.children:
                    child_results, child_epochs, child_helpers = worksharing.receive_results(child)
                    self.member_epochs += child_epochs
                    self.helpers += child_helpers
                    for mid, (res, state) in child_results.items():
                        results[mid], self.final[mid] = res, state
                        self.ended_here.append(mid)
        if self.helper:
            assert self.share is not None
            self.share.release()
            worksharing.send_results(({mid: (results[mid], self.final[mid]) for mid in self.ended_here},
                                      self.member_epochs - self.inherited_epochs, self.helpers))

    def _result(self, wall: float) -> StackedFit:
        """Load each member's final state into its model; the outcome in input order, shadows last."""
        states = []
        for mid, model in enumerate(self.models):
            own = dict(model.named_parameters())
            state = {name: t for name, t in self.final[mid].items() if name in own}
            load_parameters_(model, state)
            if self.schedules is not None:
                final_temperature_(model, self.schedules[mid], self.results[mid])
            states.append(state)
        for sid, (_, host) in enumerate(self.shadows, start=len(self.models)):
            states.append({name: self.final[sid][name] for name in states[host]})
        return StackedFit(self.results, states, self.member_epochs, wall, self.helpers)


#: Smallest part of a stack a forked helper takes over (or leaves behind).
_MIN_PART = 2


def _split_members(stack: StackedMLP, alive: np.ndarray, split_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide the surviving rows ``alive`` into two parts of about equal cost per step.

    Members of one data split (seed) tend to stop together, so whole splits
    go to one part when there are several: each part then ends when its own
    long runs end, instead of both parts dragging every split's tail. With a
    single split, contiguous rows (few segments each) are divided. A member's
    cost is its candidate evaluations per hidden layer plus a share of the
    per-step overhead; each part keeps at least :data:`_MIN_PART` members.

    Returns:
        ``(kept, given)``: ascending rows this process keeps and rows a helper takes.
    """
    cost = np.full(stack.n_members, 2.0)
    for seg in stack.segments:
        cost[seg.rows] += seg.cost
    cost = cost[alive]
    groups = split_of[alive]
    labels = np.unique(groups)
    half = cost.sum() / 2
    if labels.size > 1:
        totals = sorted(((cost[groups == g].sum(), int(g)) for g in labels), reverse=True)
        given: list[int] = []
        load = 0.0
        for total, g in totals:  # largest first, into the part that stays below half
            if load + total <= half or not given:
                given.append(g)
                load += total
        mask = np.isin(groups, given)
        if _MIN_PART <= mask.sum() <= alive.size - _MIN_PART:
            return alive[~mask], alive[mask]
    c = np.cumsum(cost)
    cut = min(max(int(np.searchsorted(c, half)) + 1, _MIN_PART), alive.size - _MIN_PART)
    return alive[:cut], alive[cut:]


class _EarlyStopping:
    """Early-stopping state of many runs, updated together: the rule of :func:`~.loop.fit`, vectorised.

    An epoch improves a run when its validation loss is below the best so far
    by more than ``min_delta`` (and nothing diverged); the run stops when
    ``patience`` epochs in a row did not improve, at ``max_epochs``, or when it
    diverges (its training objective, validation loss or weights are not
    finite: the reference loop's test).
    """

    def __init__(self, configs: Sequence[TrainConfig]) -> None:
        self.max_epochs = np.asarray([c.max_epochs for c in configs], dtype=np.int64)
        self.patience = np.asarray([c.patience for c in configs], dtype=np.int64)
        self.min_delta = np.asarray([c.min_delta for c in configs], dtype=np.float64)
        self.best_val = np.full(len(configs), math.inf)
        self.best_epoch = np.zeros(len(configs), dtype=np.int64)
        self.wait = np.zeros(len(configs), dtype=np.int64)

    def step(self, epoch: int, val: np.ndarray, diverged: np.ndarray,
             active: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Feed one epoch's validation losses (only where ``active``); ``(improved, stop)`` per run."""
        improved = (val < self.best_val - self.min_delta) & ~diverged
        if active is not None:
            improved &= active
        self.best_val = np.where(improved, val, self.best_val)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        wait = np.where(improved, 0, self.wait + 1)
        self.wait = wait if active is None else np.where(active, wait, self.wait)
        stop = (~improved & (self.wait >= self.patience)) | (epoch >= self.max_epochs) | diverged
        return improved, stop if active is None else stop & active

    def take_(self, keep: np.ndarray) -> None:
        """Keep runs ``keep`` only."""
        for name in ("max_epochs", "patience", "min_delta", "best_val", "best_epoch", "wait"):
            setattr(self, name, getattr(self, name)[keep])


class _Shadows:
    """Early stopping of shadow runs that follow a member's trajectory (see ``shadows`` of :func:`fit_stacked`).

    A shadow sees its member's validation losses and applies its own
    ``patience`` and ``max_epochs`` (``min_delta`` is the member's), so it
    stops no later than the member; until then its best epoch is the member's.
    """

    def __init__(self, shadows: Sequence[tuple[TrainConfig, int]], first_id: int) -> None:
        self.ids = list(range(first_id, first_id + len(shadows)))
        self.host = np.asarray([host for _, host in shadows], dtype=np.int64)
        self.stopping = _EarlyStopping([c for c, _ in shadows])
        self.open = np.ones(len(shadows), dtype=bool)
        self.ended: list[tuple[int, int, bool]] = []  # (shadow index, epoch, diverged) ended in this process

    def step(self, epoch: int, members: np.ndarray, val: np.ndarray, diverged: np.ndarray
             ) -> list[tuple[int, int, bool]]:
        """Feed one epoch's validation losses; ``(shadow id, row, has best)`` of the shadows that stop now."""
        if not self.open.any():
            return []
        row_of = {int(m): r for r, m in enumerate(members.tolist())}
        rows = np.asarray([row_of.get(int(h), -1) for h in self.host], dtype=np.int64)
        # a member missing here trains in another process (or has ended there): its shadows wait there
        active = self.open & (rows >= 0)
        safe = np.where(active, rows, 0)
        bad = diverged[safe] & active
        _, stop = self.stopping.step(epoch, np.where(active, val[safe], math.inf), bad, active)
        out = []
        for j in np.flatnonzero(stop).tolist():
            self.open[j] = False
            self.ended.append((j, epoch, bool(bad[j])))
            out.append((self.ids[j], int(rows[j]), bool(self.stopping.best_epoch[j] > 0)))
        return out

    def forget(self) -> None:
        """In a forked helper: shadows ended before the fork are the parent's to report."""
        self.ended = []

    def write_histories(self, results: list[FitResult]) -> None:
        """Fill the results of the shadows ended here from their members' histories."""
        for j, epoch, bad in self.ended:
            res = results[self.ids[j]]
            res.history = list(results[int(self.host[j])].history[:epoch])
            res.epochs_run = epoch
            res.best_epoch = int(self.stopping.best_epoch[j])
            res.diverged_epoch = epoch if bad else None
            res.best_val_loss = float(self.stopping.best_val[j]) if res.best_epoch else float("nan")


class _Rows:
    """Per-row (member) settings, early-stopping state and validation data of a stack, compacted together.

    Float64 numpy for the bookkeeping: cheaper than tensors for a few values.
    """

    def __init__(self, order: list[int], configs: Sequence[TrainConfig], split_of: list[int], uniq: list[Split],
                 binary: bool, n: int, schedules: list[TemperatureSchedule | None]) -> None:
        rows = np.asarray(order)
        self.member = rows.copy()
        self.schedules = [schedules[i] for i in order]
        self.scheduled = any(sc is not None for sc in self.schedules)
        self.lam64 = np.asarray([c.entropy_weight for c in configs], dtype=np.float64)[rows]
        self.lam = torch.tensor(self.lam64, dtype=torch.float32)
        self.stopping = _EarlyStopping([configs[i] for i in order])
        self.split = torch.tensor([split_of[i] for i in order], dtype=torch.long)
        self.Xv = torch.stack([torch.from_numpy(s.X_val) for s in uniq])[self.split]
        self.Yv = _targets([s.y_val for s in uniq], binary)[self.split]
        self.n = n
        self.offset = (self.split * n).unsqueeze(1)

    def take_(self, keep_np: np.ndarray, keep: Tensor) -> None:
        """Keep rows ``keep`` only."""
        self.member, self.lam64 = self.member[keep_np], self.lam64[keep_np]
        self.schedules = [self.schedules[i] for i in keep_np.tolist()]
        self.scheduled = any(sc is not None for sc in self.schedules)
        self.stopping.take_(keep_np)
        self.lam = self.lam[keep]
        self.split, self.Xv, self.Yv = self.split[keep], self.Xv[keep], self.Yv[keep]
        self.offset = (self.split * self.n).unsqueeze(1)


def _nonfinite_rows(stack: StackedMLP) -> np.ndarray:
    """Per stack row, whether any of the member's weights is not finite (``(K,)`` bool).

    One check of the whole buffer per epoch (:func:`~.loop.all_finite`); only
    a buffer holding a non-finite value is looked at member by member.
    Alignment gaps and the zero gate rows of members without that gate are
    finite.
    """
    if all_finite(stack.flat):
        return np.zeros(stack.n_members, dtype=bool)
    bad = torch.zeros(stack.n_members, dtype=torch.bool)
    for block in stack.layout.blocks(stack.flat):
        bad |= ~torch.isfinite(block).all(dim=1)
    return bad.numpy()
def _set_temperatures_(stack: StackedMLP, rows: _Rows, epoch: int) -> None:
    """Write each scheduled member's temperature of ``epoch`` into its segment's temperature rows, in place.

    The float32 values :func:`~.schedules.set_temperature_` gives a lone
    model; members without a schedule keep theirs. In place, so the units'
    views and the native step see them.
    """
    values = torch.tensor([sc.at(epoch) if sc is not None else math.nan for sc in rows.schedules],
                          dtype=torch.float32)
    for seg in stack.segments:
        part = values[seg.rows]
        on = ~torch.isnan(part)
        if not bool(on.any()):
            continue
        for T in seg.temperature:
            if T is not None:
                T[:, 0] = torch.where(on, part, T[:, 0])


def final_temperature_(model: MLP, schedule: TemperatureSchedule | None, result: FitResult) -> None:
    """Give a stacked member's model the temperature the reference trainer leaves it with.

    :func:`~.loop.fit` restores the best epoch's state, temperature buffers
    included (the last epoch's where no epoch improved).
    """
    if schedule is not None:
        set_temperature_(model, schedule.at(result.best_epoch or result.epochs_run))


def _decay_spans(stack: StackedMLP) -> list[tuple[int, int]]:
    """``(start, end)`` ranges of the flat buffer that get weight decay: the Linear parameters' blocks."""
    spans: list[tuple[int, int]] = []
    layout = stack.layout
    for name, start, size in zip(layout.names, layout.starts, layout.sizes, strict=True):
        if is_activation_parameter(name):
            continue
        end = start + layout.n_members * size
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


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
                lr: float, weight_decay: float, decay: Sequence[tuple[int, int]] | None = None) -> None:
    """``torch.optim.Adam``'s update (L2 in the gradient), operation for operation.

    The same element-wise operations, in the same order, as the optimiser's
    single-tensor path applies to each parameter, here to the whole flat
    buffer at once; element-wise results do not depend on the layout, so each
    member's values match a lone run's bit for bit. ``grad`` is overwritten
    (with the weight-decayed gradient) and ``denom`` is scratch space.
    ``decay``: the ``(start, end)`` ranges that get weight decay (``None``:
    all), as Adam's parameter groups without it skip the term.
    """
    if weight_decay != 0:
        if decay is None:
            grad.add_(param, alpha=weight_decay)
        else:
            for lo, hi in decay:
                grad[lo:hi].add_(param[lo:hi], alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - _BETA1)
    exp_avg_sq.mul_(_BETA2).addcmul_(grad, grad, value=1 - _BETA2)
    bias_correction1 = 1 - _BETA1 ** step
    bias_correction2 = 1 - _BETA2 ** step
    step_size = lr / bias_correction1
    torch.sqrt(exp_avg_sq, out=denom).div_(bias_correction2 ** 0.5).add_(_EPS)
    param.addcdiv_(exp_avg, denom, value=-step_size)


