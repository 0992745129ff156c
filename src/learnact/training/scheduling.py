"""Which members train together, and on which worker.

:func:`plan_stacks` groups members that can share a stack: same Linear
shapes, gate parameter shapes, batch size, learning rate, weight decay and
split sizes. Members with fixed activations join a gated group whose gate
parameters are small (per-layer or per-neuron logits), as segments of their
own; their absent gate parameters are dummy rows. Groups are cut into at
least one stack per worker (and at most ``max_members`` members each),
keeping members with the same split (seed) together. Members with a
learnable family (:mod:`.family_segments`) form stacks of their own: stacks
without one can use the native step (:mod:`.native`), which has no code for
families. Those are cut family by family instead: a family's segment costs
the same few passes per step whatever its size.

:func:`run_stacks` trains stacks on a pool of worker processes (forked, so
nothing is pickled on the way in; each uses one intra-op thread), largest
estimated cost first, and yields each stack's result as soon as it is done.
Where ``fork`` is unavailable or unsafe (a daemonic process such as a worker
of an outer process pool, or a process with other threads, such as a Dask
worker), stacks run one after another in the calling thread. Threads are
available on request but are a weak substitute: a stacked step launches many
small kernels and the Python between them holds the GIL. With forked workers,
a core that falls idle takes over part of a running stack
(:mod:`.worksharing`), so the stacks' unknown lengths (early stopping) do
not leave cores idle. Forked workers end with the process that forked them
and print nothing when stopped (:func:`learnact._processes.become_worker`).
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Literal, TypeVar

import torch

from .._hooks import Hooks
from .._processes import available_cores, become_worker, can_fork
from ..config import TrainConfig
from ..data import Split
from ..model import MLP
from . import worksharing
from .segments import activation_signature, segment_key
from .vectorized import stack_key

__all__ = ["Executor", "member_cost", "plan_stacks", "run_stacks", "default_workers", "single_thread",
           "while_stacks_train"]

T = TypeVar("T")

#: Members of one Linear architecture share a stack when the union of their
#: gate parameters (dummy rows for members without them) is at most this share
#: of a member's Linear parameters; otherwise each gate kind keeps its own stack
#: and fixed-activation members join the one with the smallest gate.
_MAX_DUMMY_SHARE = 0.5
Executor = Literal["auto", "processes", "threads", "inline"]

def _signatures(model: MLP) -> tuple[tuple, tuple, str]:
    """Linear parameter shapes, activation parameter shapes, and the model's family class: ``""`` (no learnable
    family layer), ``"native"`` (every family layer runs in the native step) or ``"python"``."""
    lin: list[tuple[str, tuple[int, ...]]] = []
    gate: list[tuple[str, tuple[int, ...]]] = []
    for name, p in model.named_parameters():
        (gate if ".activation." in name else lin).append((name, tuple(p.shape)))
    families = [(act, width) for act, width, a in zip(model.activations, model.hidden, activation_signature(model),
                                                      strict=True) if a.kind == "family"]
    if not families:
        return tuple(lin), tuple(gate), ""
    from . import native
    from .family_segments import in_native_step

    steps = native.available() and all(in_native_step(act, width) for act, width in families)
    return tuple(lin), tuple(gate), "native" if steps else "python"


def plan_stacks(
    models: Sequence[MLP],
    configs: Sequence[TrainConfig],
    splits: Sequence[Split],
    *,
    max_members: int = 64,
    n_parts: int = 1,
    min_members: int = 8,
) -> list[list[int]]:
    """Partition member indices into stacks.

    Members of one Linear architecture and training set-up form one group
    (gate parameters some members lack are dummy rows for them, see
    :data:`_MAX_DUMMY_SHARE`), members with a learnable family another (two:
    the families the native step runs, :func:`~.family_segments.in_native_step`,
    apart from the others, since one family layer it cannot run sends the
    whole stack to the Python step); groups are cut into stacks.

    Args:
        models: The members' models.
        configs: Their training settings.
        splits: Their data splits.
        max_members: Largest stack; bigger groups are cut.
        n_parts: Cut every group into at least this many stacks (e.g. one
            per worker), as long as each keeps ``min_members``.
        min_members: Smallest stack a group is cut into.

    A group is cut into contiguous chunks of its members ordered by split
    (seed): runs of one seed tend to stop at similar epochs, so a seed's long
    runs share a stack and the other stacks finish early, instead of every
    stack dragging a long tail of a few members. A group of learnable
    families is ordered by family first (then split): each family's segment
    runs its own passes every step (Python-dispatched, a fixed cost per call
    whatever the segment's size), so a family whose members span two stacks
    pays them twice. On the ``families`` preset (8 families x 5 seeds, 2
    workers) the stacks trained 7-10% sooner than cut by seed.

    Returns:
        Lists of member indices, each one stack, in input order.
    """
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got max_members={max_members}")
    if n_parts < 1:
        raise ValueError(f"n_parts must be >= 1, got n_parts={n_parts}")
    split_rank: dict[int, int] = {}
    for sp in splits:
        split_rank.setdefault(id(sp), len(split_rank))
    groups: dict[tuple, list[int]] = {}
    for i, (m, c, s) in enumerate(zip(models, configs, splits, strict=True)):
        lin, gate, family = _signatures(m)
        groups.setdefault((stack_key(c, s), lin, family, gate), []).append(i)
    merged: dict[tuple, list[int]] = {}
    kins: dict[tuple, list[tuple]] = {}
    for key in groups:
        kins.setdefault(key[:3], []).append(key)
    for (_sk, lin, _), keys in kins.items():
        n_lin = sum(math.prod(shape) for _, shape in lin)
        union = {entry for k in keys for entry in k[3]}
        one_shape_per_name = len({name for name, _ in union}) == len(union)
        if one_shape_per_name and sum(math.prod(shape) for _, shape in union) <= _MAX_DUMMY_SHARE * n_lin:
            merged[keys[0]] = [i for k in keys for i in groups[k]]
            continue
        for key in keys:
            if key[3]:
                merged.setdefault(key, []).extend(groups[key])
                continue
            hosts = [(sum(math.prod(sh) for _, sh in k[3]), k) for k in keys if k[3]]
            merged.setdefault(min(hosts)[1] if hosts else key, []).extend(groups[key])
    stacks: list[list[int]] = []
    for key, members in merged.items():
        n_stacks = max(-(-len(members) // max_members), min(n_parts, len(members) // max(min_members, 1)), 1)
        if key[2]:
            # learnable families: each family's segment costs a few Python-dispatched passes per step whatever
            # its size, so a family's members share one stack (whole families per chunk, then seeds)
            order = {i: (segment_key(activation_signature(models[i])), split_rank[id(splits[i])], i)
                     for i in members}
            members = sorted(members, key=order.__getitem__)
        else:
            # members of one split (seed) tend to stop together; contiguous chunks by split keep
            # the long runs of a seed in few stacks instead of giving every stack a long tail
            members = sorted(members, key=lambda i: (split_rank[id(splits[i])], i))
        bounds = [round(j * len(members) / n_stacks) for j in range(n_stacks + 1)]
        stacks.extend(sorted(members[a:b]) for a, b in zip(bounds, bounds[1:], strict=False))
    return stacks

FAMILY_COST = 3.0
"""How many times a fixed or gated member's cost a learnable-family member's epoch counts in :func:`member_cost`.

Per member-epoch in stacks of five on the ``families`` preset (2 cores): fixed and gated members 0.9-1.2 ms,
families 0.8-5.5 ms (kernel, rational and spline the dearest), 3 on average, while their parameter counts are
about the fixed ones'. Counted as fixed ones, the family stacks started last and their long runs trained alone at
the end while the other core idled.
"""


def member_cost(model: MLP, config: TrainConfig) -> float:
    """Estimated cost of training ``model`` under ``config``, for :func:`run_stacks`' longest-first order:
    its epoch budget times its parameter count, times :data:`FAMILY_COST` with a learnable-family layer."""
    params = sum(p.numel() for p in model.parameters())
    family = any(a.kind == "family" for a in activation_signature(model))
    return config.max_epochs * params * (FAMILY_COST if family else 1.0)


def default_workers() -> int:
    """Worker threads to use: the intra-op thread budget PyTorch was given (at least 1)."""
    return max(1, min(torch.get_num_threads(), available_cores()))


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run PyTorch kernels on one intra-op thread inside the block, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_JOBS: Sequence[Callable[[], Any]] = ()


def _init_worker(parent_pid: int) -> None:
    become_worker(parent_pid)  # ends with the parent, quietly; see learnact._processes
    torch.set_num_threads(1)
    _keep_freed_memory()


def _keep_freed_memory() -> None:
    """Let this (worker) process's allocator reuse freed blocks instead of returning them to the OS.

    A stacked step allocates and frees the same large temporaries every step;
    glibc's defaults hand them back (``mmap``/trim) and take page faults to
    get them again, which costs more than the arithmetic at large stacks.
    Only called in worker processes this module forks.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - not glibc
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    libc.mallopt(m_trim_threshold, 256 * 1024 * 1024)
    libc.mallopt(m_top_pad, 16 * 1024 * 1024)


def _run_job(index: int) -> tuple[int, Any]:
    worksharing.reap()  # helpers of earlier stacks that have exited since
    share = worksharing.current()
    with share.job() if share is not None else contextlib.nullcontext():
        return index, _JOBS[index]()


_WHILE_TRAINING = Hooks()
"""Callbacks :func:`run_stacks` calls here while its forked workers train (see :func:`while_stacks_train`)."""


def while_stacks_train(callback: Callable[[], None]) -> contextlib.AbstractContextManager[None]:
    """Within the block, call ``callback()`` in this process each time :func:`run_stacks` has handed its stacks
    to forked workers, while they train.

    This process only waits for their results then: ``learnact run`` imports
    there what it needs once training is over (scipy's special functions for
    the leaderboard's t intervals, the report's code), which had been on its
    path from the last stack to the leaderboard and the report's workers. The
    imports take their share of the cores from the training workers (about
    half their time on 2 cores) instead of all of it after them. Nothing is
    called where stacks train in this process (one worker, threads, inline).
    An exception ``callback`` raises propagates and stops the training.
    """
    return _WHILE_TRAINING.during(callback)


def run_stacks(jobs: Sequence[Callable[[], T]], costs: Sequence[float], workers: int,
               executor: Executor = "auto") -> Iterator[tuple[int, T]]:
    """Run ``jobs`` (one per stack) on ``workers`` workers; yield ``(index, result)`` as each ends.

    Args:
        jobs: Zero-argument callables; with processes, their results are pickled back.
        costs: Estimated cost of each job; the most expensive start first.
        workers: Parallel workers (1: run in this thread, in cost order).
        executor: ``"processes"`` (forked workers), ``"threads"``, ``"inline"``,
            or ``"auto"``: forked processes when this is a single-threaded,
            non-daemonic process on a platform with ``fork``, else inline.

    Raises:
        ValueError: ``executor="processes"`` where processes cannot be forked.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got workers={workers}")
    if executor not in ("auto", "processes", "threads", "inline"):
        raise ValueError(f"executor must be 'auto', 'processes', 'threads' or 'inline', got executor={executor!r}")
    order = sorted(range(len(jobs)), key=lambda i: -costs[i])
    if executor == "processes" and not can_fork(False):
        raise ValueError("executor='processes' needs the fork start method outside daemonic processes; "
                         "use executor='threads' or 'inline'")
    if executor == "auto":
        executor = "processes" if can_fork(True) else "inline"
    if workers == 1 or executor == "inline" or (len(jobs) == 1 and executor == "threads"):
        for i in order:
            yield i, jobs[i]()
        return
    if executor == "processes":
        global _JOBS
        _JOBS = jobs
        # forked workers then leave the parent's objects (and their pages) alone; no gc.collect() first:
        # it took 0.1 s here, and the garbage it would drop is a few objects kept a little longer
        gc.freeze()
        # idle cores take over part of a running stack (even of a lone one): see .worksharing
        worksharing.install(worksharing.WorkShare(workers, len(jobs)))
        try:
            with multiprocessing.get_context("fork").Pool(min(workers, len(jobs)), initializer=_init_worker,
                                                     initargs=(os.getpid(),)) as pool:
                results = pool.imap_unordered(_run_job, order, chunksize=1)  # handed out at once, by the pool's thread
                _WHILE_TRAINING.call()
                yield from results
        finally:
            worksharing.install(None)
            _JOBS = ()
            gc.unfreeze()
        return
    workers = min(workers, len(jobs))
    with single_thread(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="learnact-stack") as tpool:
        pending: dict[Future, int] = {tpool.submit(jobs[i]): i for i in order}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    yield i, fut.result()
        finally:
            for fut in pending:
                fut.cancel()
