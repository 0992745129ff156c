"""Which members train together, and on which worker.

:func:`plan_stacks` groups members that can share a stack (same Linear
shapes, same gate parameter shapes, same batch size, learning rate, weight
decay and split sizes); members with fixed activations join the cheapest
compatible gated stack as segments of their own (their dummy gate
parameters cost a few scalars). Large groups are cut into stacks of at most
``max_members``, keeping members with the same data split together: members
of one seed tend to stop at similar epochs, so stacks of short-lived seeds
finish early instead of every stack dragging a few long runs along.

:func:`run_stacks` trains stacks on a pool of worker threads (PyTorch
releases the GIL inside its kernels), largest estimated cost first, with one
intra-op thread each, and yields each stack's result when it is done.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

import torch

from ..config import TrainConfig
from ..data import Split
from ..model import MLP
from .vectorized import stack_key

__all__ = ["plan_stacks", "run_stacks", "default_workers", "single_thread"]

T = TypeVar("T")

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


def run_stacks(jobs: Sequence[Callable[[], T]], costs: Sequence[float], workers: int) -> Iterator[tuple[int, T]]:
    """Run ``jobs`` (one per stack) on ``workers`` threads; yield ``(index, result)`` as each ends.

    Jobs start in order of decreasing ``costs`` (longest first), which keeps
    the workers busy until the end. With one worker they run in this thread.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got workers={workers}")
    order = sorted(range(len(jobs)), key=lambda i: -costs[i])
    if workers == 1 or len(jobs) == 1:
        for i in order:
            yield i, jobs[i]()
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
