"""Worker processes that end with the process that started them, quietly (private).

learnact starts worker processes in three places: the forked pool of
:func:`~learnact.training.scheduling.run_stacks`, the helpers a stack forks
to share its members (:mod:`~learnact.training.worksharing`), and the process
pool of ``--executor processes``. None of them writes the run store; a worker
whose parent is gone only burns a core (and, before this module, kept the
study lock open and printed ``BrokenPipeError`` tracebacks when it tried to
send its results). So every worker calls :func:`become_worker` first:

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

import os
import signal
import sys
import threading
import time

__all__ = ["POLL_S", "WATCH_THREAD", "become_worker", "set_parent_death_signal"]

POLL_S = 0.2
"""Seconds between two checks that the parent lives, where neither a parent-death signal nor a pidfd is available."""

WATCH_THREAD = "learnact-parent-watch"
"""Name of the thread that watches the parent. It holds no lock (it blocks in ``select`` or ``sleep``),
so a process may still fork safely while it runs (see :func:`learnact.training.scheduling.run_stacks`)."""

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_LIBC: object | None = None


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) exits; ``False`` where unsupported.

    Linux only (``prctl(PR_SET_PDEATHSIG)``); the setting is not inherited by
    this process's own children, so each generation sets it.
    """
    global _LIBC
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        if _LIBC is None:
            _LIBC = ctypes.CDLL(None, use_errno=True)
        return _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0  # type: ignore[attr-defined]
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return False


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
