"""Which members train together, and on which worker.

:func:`plan_stacks` groups members that can share a stack (same Linear
shapes, same gate parameter shapes, same batch size, learning rate, weight
decay and split sizes); members with fixed activations join the cheapest
compatible gated stack as segments of their own (their dummy gate
parameters cost a few scalars). Large groups are cut into stacks of at most
``max_members``, keeping members with the same data split together: members
of one seed tend to stop at similar epochs, so stacks of short-lived seeds
finish early instead of every stack dragging a few long runs along.

:func:`run_stacks` trains stacks on a pool of worker processes (forked, so
nothing is pickled on the way in; each uses one intra-op thread), largest
estimated cost first, and yields each stack's result as soon as it is done.
Where ``fork`` is unavailable, or inside a daemonic process (e.g. a worker
of an outer process pool), stacks run on threads or in the calling thread.
Threads are a weak substitute: a stacked step launches many small kernels and
the Python between them holds the GIL.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Literal, TypeVar

import torch

from ..config import TrainConfig
from ..data import Split
from ..model import MLP
from .vectorized import stack_key

__all__ = ["Executor", "plan_stacks", "run_stacks", "default_workers", "single_thread"]

T = TypeVar("T")
Executor = Literal["auto", "processes", "threads", "inline"]

#: Members whose only difference is a gate this small (per member, relative to
#: the Linear parameters) share a stack with fixed-activation members.
_MAX_DUMMY_SHARE = 0.125


def _signatures(model: MLP) -> tuple[tuple, tuple]:
    lin, gate = [], []
    for name, p in model.named_parameters():
        (gate if ".activation." in name else lin).append((name, tuple(p.shape)))
    return tuple(lin), tuple(gate)


def plan_stacks(
    models: Sequence[MLP],
    configs: Sequence[TrainConfig],
    splits: Sequence[Split],
    *,
    max_members: int = 64,
) -> list[list[int]]:
    """Partition member indices into stacks.

    Args:
        models: The members' models.
        configs: Their training settings.
        splits: Their data splits (members sharing a split object are kept together).
        max_members: Largest stack; bigger groups are cut (by split) into
            stacks of about equal size.

    Returns:
        Lists of member indices, each one stack, members in input order.
    """
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got max_members={max_members}")
    groups: dict[tuple, list[int]] = {}
    for i, (m, c, s) in enumerate(zip(models, configs, splits, strict=True)):
        lin, gate = _signatures(m)
        groups.setdefault((stack_key(c, s), lin, gate), []).append(i)
    merged: dict[tuple, list[int]] = {}
    for key, members in groups.items():
        sk, lin, gate = key
        if gate:
            merged.setdefault(key, []).extend(members)
            continue
        n_lin = sum(int(torch.Size(shape).numel()) for _, shape in lin)
        hosts = [(sum(int(torch.Size(sh).numel()) for _, sh in g), k) for k in groups
                 if k[0] == sk and k[1] == lin and (g := k[2])]
        hosts = [(n, k) for n, k in hosts if n <= _MAX_DUMMY_SHARE * n_lin]
        target = min(hosts)[1] if hosts else key
        merged.setdefault(target, []).extend(members)
    stacks: list[list[int]] = []
    for members in merged.values():
        members = sorted(members)
        n_parts = -(-len(members) // max_members)
        if n_parts == 1:
            stacks.append(members)
            continue
        by_split: dict[int, list[int]] = {}
        for i in members:
            by_split.setdefault(id(splits[i]), []).append(i)
        target = len(members) / n_parts
        part: list[int] = []
        for chunk in by_split.values():
            for i in chunk:
                part.append(i)
                if len(part) >= max_members:
                    stacks.append(sorted(part))
                    part = []
            if len(part) >= target:
                stacks.append(sorted(part))
                part = []
        if part:
            stacks.append(sorted(part))
    return stacks


def default_workers() -> int:
    """Worker threads to use: the intra-op thread budget PyTorch was given (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), cores))


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


def _init_worker() -> None:
    torch.set_num_threads(1)


def _run_job(index: int) -> tuple[int, Any]:
    return index, _JOBS[index]()


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


def run_stacks(jobs: Sequence[Callable[[], T]], costs: Sequence[float], workers: int,
               executor: Executor = "auto") -> Iterator[tuple[int, T]]:
    """Run ``jobs`` (one per stack) on ``workers`` workers; yield ``(index, result)`` as each ends.

    Args:
        jobs: Zero-argument callables; with processes, their results are pickled back.
        costs: Estimated cost of each job; the most expensive start first.
        workers: Parallel workers (1: run in this thread, in cost order).
        executor: ``"processes"`` (forked workers), ``"threads"``, ``"inline"``,
            or ``"auto"``: processes where they can be forked, else threads.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got workers={workers}")
    if executor not in ("auto", "processes", "threads", "inline"):
        raise ValueError(f"executor must be 'auto', 'processes', 'threads' or 'inline', got executor={executor!r}")
    order = sorted(range(len(jobs)), key=lambda i: -costs[i])
    if workers == 1 or len(jobs) == 1 or executor == "inline":
        for i in order:
            yield i, jobs[i]()
        return
    workers = min(workers, len(jobs))
    if executor in ("auto", "processes") and _can_fork():
        global _JOBS
        _JOBS = jobs
        try:
            with multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker) as pool:
                yield from pool.imap_unordered(_run_job, order, chunksize=1)
        finally:
            _JOBS = ()
        return
    with single_thread(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="learnact-stack") as pool:
        pending: dict[Future, int] = {pool.submit(jobs[i]): i for i in order}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    yield i, fut.result()
        finally:
            for fut in pending:
                fut.cancel()
