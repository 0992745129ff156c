"""What one variant costs to train on its own: FLOPs, step latency and activation memory.

The vectorised engine trains many runs at once, so a stacked run's wall time
is its share of a stack and says little about its activation. These
measurements answer the question a user who trains that variant alone asks,
on the variant's own model (a copy; the trained weights are not touched), at
the study's batch size, with the protocol's objective
(:func:`~learnact.training.objective.batch_objective`) and optimiser:

- **FLOPs per sample** of one forward and backward pass (the optimiser step
  is not included), divided by the batch size. Matrix products are counted
  by :class:`torch.utils.flop_counter.FlopCounterMode` (2 per multiply-add).
  It counts no elementwise operation, and an activation function is nothing
  else, so they are counted here per ATen operation: one FLOP per output
  element of every arithmetic pointwise operation (``tanh``, ``mul``,
  ``sigmoid_backward``, comparisons; copies excluded), and one per input
  element of every reduction (``sum``, ``amax``), of softmax, log-softmax and
  the losses, and of their backward operations. A transcendental function
  counts as one FLOP although it costs a processor more; indexing and other
  data movement count nothing.
- **Step latency**: the median wall time of one full training step (zero
  grad, forward, backward, Adam step) over ``steps`` steps after ``warmup``
  unmeasured ones, on one intra-op thread, in milliseconds.
- **Activation memory per sample**: the bytes of the tensors autograd saves
  for the backward pass (:func:`torch.autograd.graph.saved_tensors_hooks`),
  each storage once, parameters excluded, divided by the batch size.
"""

from __future__ import annotations

import copy
import gc
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.optim.adam import adam
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..config import TrainConfig
from ..model import MLP
from .loop import optimizer_groups, train_step
from .objective import batch_objective
from .scheduling import single_thread

__all__ = ["StepCost", "measure_step_cost", "count_flops", "activation_bytes", "step_latency_ms", "FunctionalAdam",
           "measure_step_costs",
           "COST_METRICS"]

COST_METRICS = ("flops_per_sample", "step_latency_ms", "activation_bytes_per_sample")
"""The keys :meth:`StepCost.metrics` writes into a run's ``metrics.json``."""

_aten = torch.ops.aten
# Pointwise-tagged operations that only move data.
_MOVES = {_aten.clone, _aten._to_copy, _aten.copy_, _aten.lift_fresh_copy, _aten.alias, _aten.fill_}
# Operations without the pointwise or reduction tag that still do arithmetic on each input element.
_PER_INPUT = {_aten._softmax, _aten._log_softmax, _aten._softmax_backward_data, _aten._log_softmax_backward_data,
              _aten.binary_cross_entropy, _aten.binary_cross_entropy_backward, _aten.nll_loss_forward,
              _aten.nll_loss_backward, _aten.scatter_add, _aten.index_add}


def _numel(tree: Any) -> int:
    """Elements of the largest tensor in ``tree`` (a tensor, or a list/tuple of them)."""
    if isinstance(tree, Tensor):
        return tree.numel()
    if isinstance(tree, (list, tuple)):
        return max((_numel(t) for t in tree), default=0)
    return 0


class _CountingMode(TorchDispatchMode):
    """Counts FLOPs per ATen operation: matrix products by ``FlopCounterMode``'s formulas, the rest elementwise.

    :class:`FlopCounterMode` itself is not entered: any mode that torch wraps
    for its compiler imports ``torch._dynamo`` on first use, seconds per
    process. This mode opts out of that wrapping (``_should_skip_dynamo``, a
    private hook of :class:`TorchDispatchMode`) and reads the public
    ``FlopCounterMode().flop_registry`` for the matrix products, so its
    ``matmul`` count is FlopCounterMode's total (checked in
    ``tests/training/test_cost.py``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.matmul = 0
        self.elementwise = 0
        self._formulas = FlopCounterMode(display=False).flop_registry

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        if packet in self._formulas:
            self.matmul += int(self._formulas[packet](*args, **kwargs, out_val=out))
        elif packet in _MOVES:
            pass
        elif packet in _PER_INPUT or torch.Tag.reduction in func.tags:
            self.elementwise += _numel(args[0]) if args else 0
        elif torch.Tag.pointwise in func.tags:
            self.elementwise += _numel(out)
        return out


def count_flops(model: MLP, x: Tensor, target: Tensor, entropy_weight: float = 0.0) -> tuple[int, int]:
    """FLOPs of one forward and backward pass of the objective on the batch ``x``.

    Returns:
        ``(matmul, elementwise)``: matrix products as :class:`FlopCounterMode`
        counts them, and the elementwise operations it does not count (see the
        module docstring). Gradients are left in ``model``; use a copy.

    Shape:
        - x: ``(b, in_features)``; target: as :func:`~learnact.training.objective.task_loss`
    """
    model.zero_grad(set_to_none=True)
    with _CountingMode() as mode:
        loss, _, _ = batch_objective(model, x, target, entropy_weight)
        loss.backward()
    return mode.matmul, mode.elementwise


def activation_bytes(model: MLP, x: Tensor, target: Tensor, entropy_weight: float = 0.0) -> int:
    """Bytes autograd keeps for the backward pass of the objective on ``x``.

    Every tensor saved for backward is recorded by a
    :func:`~torch.autograd.graph.saved_tensors_hooks` pack hook; each storage
    counts once (a ReLU output that the next layer also saves is one tensor),
    and the parameters' own storages are left out (they exist anyway).
    """
    import weakref

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    packed: list[tuple[weakref.ref[Tensor], int, int]] = []

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        packed.append((weakref.ref(t), storage.data_ptr(), storage.nbytes()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = batch_objective(model, x, target, entropy_weight)
    # what the graph still holds once the forward is done, each storage once: a tensor saved by a part of the
    # graph that was dropped during the forward is gone, and the allocator may have given its address to a later
    # one (keyed by address alone, the later one's size replaced it, by chance: the spline's count varied)
    kept: dict[int, int] = {}
    for ref, ptr, nbytes in packed:
        if ref() is not None and ptr not in params and ptr != 0:
            kept[ptr] = nbytes
    del loss
    return sum(kept.values())


class FunctionalAdam:
    """``torch.optim.Adam``'s CPU update without the ``torch.optim.Optimizer`` wrapper.

    Each step calls :func:`torch.optim.adam.adam` with ``foreach=False``, the
    single-tensor kernel ``torch.optim.Adam`` runs on CPU tensors, over the
    same parameter groups (:func:`~learnact.training.loop.optimizer_groups`)
    and state (float32 step counts, zero moments created at the first step),
    so the weights follow ``torch.optim.Adam`` bit for bit (a test holds them).
    Building a ``torch.optim.Optimizer`` imports ``torch._dynamo``, about two
    seconds the first time in a process; a cost measurement after a vectorised
    study, which builds no other optimiser, would pay it before the
    leaderboard could print.
    """

    def __init__(self, groups: list[dict[str, Any]], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.groups = [(list(g["params"]), float(g["weight_decay"])) for g in groups]
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.state: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    def zero_grad(self) -> None:
        """Drop every gradient (``set_to_none``, as ``torch.optim.Adam.zero_grad`` does)."""
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        for params, decay in self.groups:
            live = [p for p in params if p.grad is not None]
            for p in live:
                if id(p) not in self.state:
                    self.state[id(p)] = (torch.tensor(0.0, dtype=torch.float32),
                                         torch.zeros_like(p, memory_format=torch.preserve_format),
                                         torch.zeros_like(p, memory_format=torch.preserve_format))
            states = [self.state[id(p)] for p in live]
            adam(live, [p.grad for p in live], [s[1] for s in states], [s[2] for s in states], [],
                 [s[0] for s in states], foreach=False, capturable=False, differentiable=False, fused=None,
                 grad_scale=None, found_inf=None, has_complex=False, amsgrad=False, beta1=self.betas[0],
                 beta2=self.betas[1], lr=self.lr, weight_decay=decay, eps=self.eps, maximize=False)


def _timed_steps(model: MLP, opt: FunctionalAdam, x: Tensor, target: Tensor, lam: float, steps: int) -> list[float]:
    """Wall times (ms) of ``steps`` training steps, the garbage collector paused."""
    times = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(steps):
            start = time.perf_counter()
            train_step(model, opt, x, target, lam)
            times.append((time.perf_counter() - start) * 1000.0)
    finally:
        if enabled:
            gc.enable()
    return times


def step_latency_ms(model: MLP, x: Tensor, target: Tensor, train: TrainConfig, *, warmup: int = 3,
                    steps: int = 20) -> list[float]:
    """Wall times (ms) of ``steps`` training steps on ``x`` after ``warmup`` unmeasured ones.

    Each step is :func:`~learnact.training.loop.train_step` with Adam over the
    reference trainer's parameter groups (``train.lr``, weight decay as
    :func:`~learnact.training.loop.optimizer_groups` sets it; the update of
    :class:`FunctionalAdam`, torch's own) and the objective's entropy weight;
    ``model`` is trained in place (use a copy). The garbage collector is
    paused while timing.
    """
    opt = FunctionalAdam(optimizer_groups(model, train), lr=train.lr)
    for _ in range(warmup):
        train_step(model, opt, x, target, train.entropy_weight)
    return _timed_steps(model, opt, x, target, train.entropy_weight, steps)


@dataclass(frozen=True)
class StepCost:
    """Cost of training one variant alone (see the module docstring for how each is measured).

    Attributes:
        batch_size: Samples in the measured batch.
        matmul_flops_per_sample: Matrix-product FLOPs of forward + backward, per sample.
        elementwise_flops_per_sample: Elementwise FLOPs of forward + backward, per sample.
        step_latency_ms: Median wall time of one training step (ms, one thread).
        activation_bytes_per_sample: Bytes saved for backward, per sample.
    """

    batch_size: int
    matmul_flops_per_sample: float
    elementwise_flops_per_sample: float
    step_latency_ms: float
    activation_bytes_per_sample: float

    @property
    def flops_per_sample(self) -> float:
        """All FLOPs of forward + backward per sample (matrix products and elementwise)."""
        return self.matmul_flops_per_sample + self.elementwise_flops_per_sample

    def metrics(self) -> dict[str, float]:
        """The :data:`COST_METRICS` of a run's ``metrics.json``."""
        return {"flops_per_sample": self.flops_per_sample, "step_latency_ms": self.step_latency_ms,
                "activation_bytes_per_sample": self.activation_bytes_per_sample}

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "flops_per_sample": self.flops_per_sample}


K = TypeVar("K")


def measure_step_cost(model: MLP, x: Tensor, target: Tensor, train: TrainConfig, *, warmup: int = 3,
                      steps: int = 20) -> StepCost:
    """Measure what one training step of ``model``'s variant costs, alone, on one thread.

    Works on a deep copy of ``model``: its weights, gradients and the
    process's thread count are left as they were.

    Args:
        model: The variant's model (trained or not: the cost depends on shapes only).
        x: One batch of inputs at the study's batch size (or the whole training
            part, when it is smaller).
        target: Its targets (:func:`~learnact.training.objective.targets_tensor`).
        train: The run's training settings (lr, weight decay, entropy weight).
        warmup: Unmeasured steps before timing.
        steps: Timed steps; the median is kept.

    Shape:
        - x: ``(b, in_features)``
    """
    return measure_step_costs({0: (model, x, target, train)}, warmup=warmup, steps=steps, rounds=1)[0]


def measure_step_costs(cases: Mapping[K, tuple[MLP, Tensor, Tensor, TrainConfig]], *, warmup: int = 2,
                       steps: int = 5, rounds: int = 5) -> dict[K, StepCost]:
    """:func:`measure_step_cost` of several variants, their step latencies timed in interleaved rounds.

    Each round times ``steps`` steps of every variant in turn; a variant's
    latency is the median over rounds of its round medians. A burst of load
    from elsewhere on the machine then falls on every variant alike instead
    of on whichever was timed during it, so the variants keep the order that
    training each alone gives them. FLOPs and activation memory are counted
    once (they do not vary). Works on deep copies; the models, their
    gradients and the process's thread count are left as they were.

    Args:
        cases: ``key -> (model, x, target, train)``, as for :func:`measure_step_cost`.
        warmup: Unmeasured steps of each variant before the first round.
        steps: Timed steps per variant and round.
        rounds: Rounds.

    Returns:
        ``key -> StepCost``, in the order of ``cases``.
    """
    if steps < 1 or warmup < 0 or rounds < 1:
        raise ValueError(f"need steps >= 1, warmup >= 0 and rounds >= 1, got steps={steps}, warmup={warmup}, "
                         f"rounds={rounds}")
    for _model, x, _target, _train in cases.values():
        if int(x.shape[0]) < 1:
            raise ValueError(f"need a batch of at least one sample, got x of shape {tuple(x.shape)}")
    works = {key: copy.deepcopy(model).train() for key, (model, *_rest) in cases.items()}
    with single_thread():
        counted = {key: (count_flops(works[key], x, y, train.entropy_weight),
                         activation_bytes(works[key], x, y, train.entropy_weight))
                   for key, (_m, x, y, train) in cases.items()}
        opts = {key: FunctionalAdam(optimizer_groups(works[key], train), lr=train.lr)
                for key, (_m, _x, _y, train) in cases.items()}
        for key, (_m, x, y, train) in cases.items():
            for _ in range(warmup):
                train_step(works[key], opts[key], x, y, train.entropy_weight)
        medians: dict[K, list[float]] = {key: [] for key in cases}
        for _ in range(rounds):
            for key, (_m, x, y, train) in cases.items():
                times = _timed_steps(works[key], opts[key], x, y, train.entropy_weight, steps)
                medians[key].append(statistics.median(times))
    out = {}
    for key, (_m, x, _y, _train) in cases.items():
        b = int(x.shape[0])
        (matmul, elementwise), saved = counted[key]
        out[key] = StepCost(batch_size=b, matmul_flops_per_sample=matmul / b,
                            elementwise_flops_per_sample=elementwise / b,
                            step_latency_ms=float(statistics.median(medians[key])),
                            activation_bytes_per_sample=saved / b)
    return out
