"""Idle cores take over part of a running stack.

How long a member trains is only known when early stopping ends it, so a
static assignment of stacks to worker processes leaves cores idle while one
stack drags a tail of long runs. :class:`WorkShare` counts the processes that
are training and the stacks not yet started; at an epoch boundary a stack
whose process sees an idle core (:meth:`WorkShare.try_claim`) forks, and the
child process continues with part of the members (see
:func:`~.vectorized.fit_stacked`). The child inherits every tensor, generator
and history record by ``fork``, so nothing is serialised on the way in, and
the members' arithmetic is unchanged (members of a stack are independent).
The child sends its members' results back through a pipe
(:func:`send_results` / :func:`receive_results`).

Only processes created by :func:`~.scheduling.run_stacks` with forked
workers take part (:func:`current` is ``None`` elsewhere).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import struct
import traceback
from collections.abc import Iterator
from typing import Any

from .._processes import become_worker, read_all, write_all

__all__ = ["WorkShare", "current", "fork_child", "reap", "receive_results", "send_results"]


class WorkShare:
    """Counters shared by forked worker processes: busy processes and queued stacks.

    Args:
        cores: Processes that may train at once.
        queued: Stacks not yet started.
    """

    def __init__(self, cores: int, queued: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.cores = cores
        self._busy = ctx.Value("i", 0)
        self._queued = ctx.Value("i", queued)

    @contextlib.contextmanager
    def job(self) -> Iterator[None]:
        """Account for one stack (a queued job) while it trains in this process."""
        with self._busy.get_lock():
            self._busy.value += 1
            self._queued.value -= 1
        try:
            yield
        finally:
            self.release()

    def try_claim(self) -> bool:
        """Claim an idle core for a new process (True), if one is idle and no stack waits for it."""
        with self._busy.get_lock():
            if self._busy.value + self._queued.value < self.cores:
                self._busy.value += 1
                return True
        return False

    def release(self) -> None:
        """A process stops training."""
        with self._busy.get_lock():
            self._busy.value -= 1

    def acquire(self) -> None:
        """A process resumes training (after :meth:`release`), idle core or not."""
        with self._busy.get_lock():
            self._busy.value += 1

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """This process waits (for its helpers): its core counts as idle meanwhile."""
        self.release()
        try:
            yield
        finally:
            self.acquire()


_CURRENT: WorkShare | None = None


def current() -> WorkShare | None:
    """The work share of this worker process, or ``None`` (no splitting here)."""
    return _CURRENT


def install(share: WorkShare | None) -> None:
    """Make ``share`` this process's work share (set before forking workers, so they inherit it)."""
    global _CURRENT
    _CURRENT = share


def fork_child() -> tuple[int, int] | None:
    """Fork: ``None`` in the child, ``(pid, read_fd)`` of the child's result pipe in the parent.

    The child writes its results with :func:`send_results` on :data:`CHILD_FD` and must end with ``os._exit``;
    it ends (``SIGKILL``) as soon as this process ends (:func:`learnact._processes.become_worker`).
    """
    global CHILD_FD
    parent = os.getpid()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        CHILD_FD = write_fd
        become_worker(parent)  # ends with the process that forked it, quietly
        return None
    os.close(write_fd)
    return pid, read_fd


#: In a forked child: the write end of its result pipe.
CHILD_FD = -1


def send_results(payload: Any) -> None:
    """In a forked child: send ``payload`` (or the exception being handled) to the parent, then exit."""
    try:
        data = pickle.dumps(("ok", payload), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # pragma: no cover - unpicklable results
        send_error()
    _send(data, 0)


def send_error() -> None:
    """In a forked child: report the exception being handled to the parent, then exit."""
    _send(pickle.dumps(("error", traceback.format_exc())), 1)


def _send(data: bytes, code: int) -> None:
    """Write ``data`` length-prefixed to the parent's pipe and exit with ``code``, whatever happens."""
    try:
        write_all(CHILD_FD, struct.pack("<Q", len(data)) + data)
        os.close(CHILD_FD)
    finally:
        os._exit(code)


def receive_results(child: tuple[int, int]) -> Any:
    """Wait for a forked child's payload.

    The payload is complete when the pipe closes; the child's exit (tearing
    down its address space, tens of milliseconds) is not waited for then: it
    is reaped later (:func:`reap`).

    Raises:
        RuntimeError: The child failed (its traceback is in the message) or died.
    """
    pid, fd = child
    try:
        data = read_all(fd)
    finally:
        os.close(fd)
    if len(data) < 8 or len(data) - 8 != struct.unpack("<Q", data[:8])[0]:
        _, status = os.waitpid(pid, 0)
        raise RuntimeError(f"a stack's helper process (pid {pid}) died without results (wait status {status})")
    _EXITING.append(pid)
    reap()
    kind, payload = pickle.loads(data[8:])
    if kind != "ok":
        raise RuntimeError(f"a stack's helper process failed:\n{payload}")
    return payload


#: Helpers that sent their results and are exiting, not yet reaped.
_EXITING: list[int] = []


def reap() -> None:
    """Collect the exit status of helpers that have sent their results and exited since."""
    for pid in list(_EXITING):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _EXITING.remove(pid)
