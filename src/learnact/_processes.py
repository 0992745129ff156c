"""Worker processes that end with the process that started them, quietly (private).

learnact starts worker processes in five places: the helper of
:class:`ForkedCall` that checks and splits a study's data while ``learnact
run`` imports torch (:mod:`~learnact.experiment.run_splits`), the forked pool
of :func:`~learnact.training.scheduling.run_stacks`, the helpers a stack
forks to share its members (:mod:`~learnact.training.worksharing`), the
process pool of ``--executor processes``, and :func:`fork_map`, which spreads
the writing and reading of run folders over the cores once training is over
(each folder is written whole under a temporary name and renamed, so a
worker stopped mid-way leaves no half-written run). A worker whose parent is
gone only burns a core (and, before this module, kept the study lock open
and printed ``BrokenPipeError`` tracebacks when it tried to send its
results). So every worker calls :func:`become_worker` first:

- it ends at once (``SIGKILL``) when the process it works for ends, however
  that ends (``kill -9`` included): on Linux by a parent-death signal
  (``prctl(PR_SET_PDEATHSIG)``) where that process is its direct parent, else
  (another OS, or a worker started by a fork server) by a daemon thread that
  waits for that process to end (a ``pidfd`` where there is one, else a poll
  of the pid every :data:`POLL_S` seconds);
- it ignores ``SIGINT`` (Ctrl-C reaches the whole process group; the parent
  handles it and stops its workers), and ``SIGTERM`` and ``SIGPIPE`` end it
  silently (the default action), so neither a handler inherited from the
  parent nor a write to a parent that is gone prints a traceback.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["DISPLAY_THREAD", "POLL_S", "WATCH_THREAD", "MIN_PER_WORKER", "ForkedCall", "available_cores",
           "become_worker", "can_fork", "fork_map", "name_process", "read_all", "set_parent_death_signal",
           "write_all"]

T = TypeVar("T")
R = TypeVar("R")

POLL_S = 0.2
"""Seconds between two checks that the parent lives, where neither a parent-death signal nor a pidfd is available."""

WATCH_THREAD = "learnact-parent-watch"
"""Name of the thread that watches the parent. It holds no lock (it blocks in ``select`` or ``sleep``),
so a process may still fork safely while it runs (see :func:`learnact.training.scheduling.run_stacks`)."""

DISPLAY_THREAD = "learnact-display"
"""Name of the thread that redraws the terminal's progress bar (:mod:`learnact.cli.progress`). Each redraw holds a
lock that every fork of the process waits for (``os.register_at_fork``), so when a fork copies the process that
thread holds no lock (it waits for that one, or sleeps), and forking stays safe while it runs."""

_FORK_SAFE_THREADS = frozenset({WATCH_THREAD, DISPLAY_THREAD})

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PR_SET_NAME = 15
_LIBC: object | None = None


def _prctl(option: int, arg: object) -> bool:
    """``prctl(option, arg, 0, 0, 0)`` through the C library; ``False`` where unsupported (Linux only)."""
    global _LIBC
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        if _LIBC is None:
            _LIBC = ctypes.CDLL(None, use_errno=True)
        return _LIBC.prctl(option, arg, 0, 0, 0) == 0  # type: ignore[attr-defined]
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return False


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) exits; ``False`` where unsupported.

    Linux only (``prctl(PR_SET_PDEATHSIG)``); the setting is not inherited by
    this process's own children, so each generation sets it.
    """
    return _prctl(_PR_SET_PDEATHSIG, int(sig))


def name_process(name: str) -> bool:
    """Name this process ``name`` in the kernel's task list (``/proc/PID/comm``, what ``top`` shows; at most 15
    bytes), where a fork would otherwise carry its parent's name; ``False`` where unsupported. Linux only; the
    process's own forks inherit it."""
    return _prctl(_PR_SET_NAME, name.encode()[:15])


def _exit_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL) if hasattr(signal, "SIGKILL") else os._exit(1)


def _wait_then_exit(parent_pid: int) -> None:
    """Block until ``parent_pid`` ends (its pidfd becomes readable, or a poll finds it gone), then end this process."""
    pidfd = -1
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(parent_pid)
        except OSError:  # already gone (ESRCH), or a kernel without pidfds
            pidfd = -1
            if not _alive(parent_pid):
                _exit_now()
    if pidfd >= 0:
        import select

        select.select([pidfd], [], [])  # readable once the process has ended (zombie or reaped)
        _exit_now()
    while _alive(parent_pid):
        time.sleep(POLL_S)
    _exit_now()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process with that pid
        return True
    return True


def become_worker(parent_pid: int) -> None:
    """Call first in a worker process: end with ``parent_pid``, quietly (see the module docstring).

    Args:
        parent_pid: The process this worker works for, recorded *before* it
            was started (``os.getpid()`` in that process), so a parent that
            died in the meantime is noticed.
    """
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() == parent_pid and set_parent_death_signal(signal.SIGKILL):
        if os.getppid() != parent_pid:  # the parent ended before the signal was set
            _exit_now()
        return
    if not _alive(parent_pid):
        _exit_now()
    threading.Thread(target=_wait_then_exit, args=(parent_pid,), name=WATCH_THREAD, daemon=True).start()


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


PROCESSES_PER_CORE = 4
"""The most worker processes learnact starts per core this process may use (``--threads`` of the local
vectorised engine, ``--workers`` of the processes executor): each holds a Python and torch, and 100,000 of them
ran out of memory."""


def most_processes() -> int:
    """The most worker processes learnact starts on this machine: :data:`PROCESSES_PER_CORE` per available core."""
    return PROCESSES_PER_CORE * available_cores()


def can_fork(require_single_thread: bool = True) -> bool:
    """Whether forking workers is possible here (and, with ``require_single_thread``, safe).

    Needs the ``fork`` start method and a process that is not itself a
    daemonic worker. With ``require_single_thread``, no other thread may run:
    a fork copies whatever lock another thread holds at that moment, and the
    child can then hang on it. The parent-watch thread of a worker
    (:data:`WATCH_THREAD`) and the progress bar's redraw thread
    (:data:`DISPLAY_THREAD`) hold no lock when a fork happens, so they do
    not count: ``learnact run`` on a terminal trains in forked workers as it
    does with its output in a file.
    """
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return False
    others = [t for t in threading.enumerate()
              if t is not threading.current_thread() and t.name not in _FORK_SAFE_THREADS]
    return not require_single_thread or not others


_FORK_TASK: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def _fork_chunk(bounds: tuple[int, int]) -> tuple[str, Any]:
    """In a forked worker: ``fn`` over ``items[lo:hi]`` (both inherited through the fork, never pickled)."""
    assert _FORK_TASK is not None
    fn, items = _FORK_TASK
    try:
        return "ok", [fn(items[i]) for i in range(*bounds)]
    except Exception as exc:
        try:
            pickle.dumps(exc)
        except Exception:  # e.g. a validation error that cannot be pickled: the caller reruns the chunk itself
            return "rerun", None
        return "raise", exc


MIN_PER_WORKER = 128
"""Items each worker of :func:`fork_map` must get at least, by default. Forking a process that holds a trained
study (torch, models, artefacts) costs more than writing the paper study's 75 run folders one by one; after the
1,005-run study, two workers wrote the folders in 2.5 s instead of 7.8 s."""


def fork_map(fn: Callable[[T], R], items: Sequence[T], workers: int, *,
             min_per_worker: int | None = None) -> Iterator[R]:
    """Yield ``fn(item)`` for every item, in order, computed in up to ``workers`` forked processes.

    For the bookkeeping that follows training (writing and reading run
    folders): Python-heavy work (JSON, CSV, hashing) that one process does
    one run at a time. The items and ``fn`` reach the workers through the
    fork (only index ranges and results are pickled), so ``fn`` may be a
    closure. Each worker calls :func:`become_worker` first: it ends with this
    process and leaves Ctrl-C to it.

    Everything runs in this process, in order, when ``workers`` is 1, when
    there are fewer than ``min_per_worker`` items per worker, or where a fork
    is unavailable or unsafe (:func:`can_fork`: another thread is running,
    other than the ones it knows to be safe).

    An exception ``fn`` raises in a worker is raised here as it was raised
    there; one that cannot be pickled is raised by running that worker's
    share again in this process.

    Args:
        fn: Called once per item.
        items: The inputs (a sequence: workers take index ranges of it).
        workers: Most worker processes.
        min_per_worker: Items each worker must get at least for the fork to pay off
            (default :data:`MIN_PER_WORKER`).
    """
    global _FORK_TASK
    n = len(items)
    least = MIN_PER_WORKER if min_per_worker is None else min_per_worker
    workers = min(workers, n // max(1, least))
    if workers <= 1 or _FORK_TASK is not None or not can_fork(True):
        for item in items:
            yield fn(item)
        return
    step = max(1, -(-n // (4 * workers)))  # about four ranges per worker: an even finish without many round trips
    ranges = [(lo, min(n, lo + step)) for lo in range(0, n, step)]
    _FORK_TASK = (fn, items)
    # the workers leave this process's objects alone: no collector pass in them touches (and copies) its pages
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=become_worker,
                                                     initargs=(os.getpid(),)) as pool:
            for bounds, (outcome, value) in zip(ranges, pool.imap(_fork_chunk, ranges), strict=True):
                if outcome == "raise":
                    raise value
                if outcome == "rerun":  # raises here what the worker could not send back
                    for i in range(*bounds):
                        yield fn(items[i])
                    continue
                yield from value
    finally:
        _FORK_TASK = None
        gc.unfreeze()


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the file descriptor ``fd`` (a pipe takes it in pieces); ``fd`` stays open."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_all(fd: int) -> bytes:
    """Read the file descriptor ``fd`` to its end (a pipe: until every writer has closed it); ``fd`` stays open."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_message(fd: int) -> Any:
    """In a :class:`ForkedCall` helper: the one pickled object :meth:`ForkedCall.send` writes to ``fd``
    (length-prefixed: any other process holding the pipe's write end cannot delay it); ends the helper quietly
    when the pipe closes first (its caller no longer wants the call)."""
    def exactly(n: int) -> bytes:
        chunks = []
        while n:
            chunk = os.read(fd, n)
            if not chunk:
                os._exit(1)
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    return pickle.loads(exactly(int.from_bytes(exactly(8), "little")))


class ForkedCall:
    """``fn()`` computed in a forked helper process while the caller goes on; :meth:`result` collects it.

    The helper calls :func:`become_worker`, computes ``fn()``, sends the
    result pickled through a pipe and leaves with ``os._exit`` (none of the
    caller's exit handlers run in it, no buffered output is written twice).
    Fork only where :func:`can_fork` allows it.

    A helper can start before its argument is known: with ``takes_input``
    it runs ``before()`` (imports, say) at once, then waits for the argument
    that :meth:`send` gives it and computes ``fn(argument)``.

    Args:
        fn: Runs in the helper; reaches it through the fork (it may be a closure), only its result is pickled.
        takes_input: ``fn`` takes one argument, sent later with :meth:`send` (pickled).
        before: Runs first in the helper, before it waits for the argument; what it raises is ignored (``fn``
            meets the same problem and fails the call, or not).
    """

    def __init__(self, fn: Callable[..., Any], *, takes_input: bool = False,
                 before: Callable[[], object] | None = None) -> None:
        parent = os.getpid()
        read_end, write_end = os.pipe()
        in_read, in_write = os.pipe() if takes_input else (-1, -1)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the helper (coverage does not follow a fork ending in os._exit)
            code = 1
            try:
                os.close(read_end)
                become_worker(parent)
                if takes_input:
                    os.close(in_write)
                if before is not None:
                    try:
                        before()
                    except Exception:  # noqa: BLE001 - only a head start
                        pass
                args = (_read_message(in_read),) if takes_input else ()
                write_all(write_end, pickle.dumps(fn(*args), protocol=pickle.HIGHEST_PROTOCOL))
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        if takes_input:
            os.close(in_read)
        self._pid: int | None = pid
        self._read = read_end
        self._input = in_write
        self._done = False
        self._value: Any = None

    def send(self, argument: Any) -> None:
        """Give a helper started with ``takes_input`` its argument (once).

        Raises:
            OSError: The helper is gone (killed since it started): no result will come.
        """
        if self._input < 0:
            raise ValueError("this helper takes no argument, or has had it")
        fd, self._input = self._input, -1
        try:
            data = pickle.dumps(argument, protocol=pickle.HIGHEST_PROTOCOL)
            write_all(fd, len(data).to_bytes(8, "little") + data)
        finally:
            os.close(fd)

    def result(self, default: Any = None) -> Any:
        """Wait for the helper and return ``fn()``'s value, or ``default`` if it failed (an exception,
        a result that cannot be pickled, a helper that was killed); later calls return the same."""
        if not self._done:
            try:
                data = read_all(self._read)
            except OSError:
                data = b""
            status = self._reap(stop=False)
            try:
                self._value = pickle.loads(data) if status == 0 and data else default
            except Exception:
                self._value = default
            self._done = True
        return self._value

    def close(self) -> None:
        """End the helper if it still runs (its result is no longer wanted) and reap it."""
        self._reap(stop=True)

    def _reap(self, stop: bool) -> int | None:
        if self._input >= 0:  # never sent: the helper ends on the closed pipe, or is killed below
            os.close(self._input)
            self._input = -1
        if self._pid is None:
            return None
        pid, self._pid = self._pid, None
        try:
            os.close(self._read)
        except OSError:
            pass
        if stop:
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                return os.waitstatus_to_exitcode(status)
            os.kill(pid, signal.SIGKILL)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
