"""Where groups of runs train: this process, a local process pool, or a Dask cluster.

Every backend is a :class:`concurrent.futures.Executor`; the runner only
calls ``submit(run_group, engine, runs, threads)`` and reads the futures'
results, so another cluster (Ray, a batch system) is one more branch in
:func:`open_executor` and nothing else. A task trains one group of runs and
returns their artefacts; the runner's process writes them to the run store.

Results do not depend on the executor: every task trains with the same
engine and the same number of torch threads, and each run draws its
randomness from its own seed.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from .._processes import PROCESSES_PER_CORE, become_worker, most_processes
from ..config import RunConfig
from ..exceptions import ConfigError
from ..names import DEFAULT_CONNECT_TIMEOUT_S, EXECUTORS
from ..store import RunArtifacts
from .engines import train_group

__all__ = [
    "EXECUTORS",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "ExecutorPool",
    "InProcessExecutor",
    "open_executor",
    "run_group",
]

T = TypeVar("T")


def run_group(engine: str, runs: Sequence[RunConfig], threads: int = 1, device: str = "cpu") -> list[RunArtifacts]:
    """The task every executor runs: :func:`~learnact.experiment.engines.train_group`.

    The runs' plugin modules are imported first, so a worker process or a
    Dask worker knows the user's candidates (a candidate named by import
    path resolves on its own).

    The process's torch thread count is restored afterwards, so running a task
    in the caller's own process leaves no trace.
    """
    import torch

    from ..plugins import import_plugins

    import_plugins(list(dict.fromkeys(p for run in runs for p in run.plugins)))  # this worker may not have them yet
    before = torch.get_num_threads()
    try:
        return train_group(engine, list(runs), threads, device)
    finally:
        torch.set_num_threads(before)


class InProcessExecutor(Executor):
    """Runs each task in the calling process, at ``submit`` time.

    ``submit`` returns an already finished future, so a caller that keeps one
    task in flight gets results one by one, in order, as they are made.
    """

    def __init__(self) -> None:
        self._shut = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` now; its result or exception is in the returned future."""
        if self._shut:
            raise RuntimeError("cannot submit to an InProcessExecutor after shutdown")
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # KeyboardInterrupt and SystemExit propagate at once
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse further tasks (nothing runs in the background)."""
        self._shut = True


@dataclass(frozen=True)
class ExecutorPool:
    """An open executor and how to use it.

    Attributes:
        executor: Where tasks run.
        n_slots: How many tasks it runs at once (the runner keeps about twice
            as many in flight, and sizes groups so every slot gets work).
        description: One line for logs (``"dask at tcp://10.0.0.1:8786, 8 threads"``).
        max_in_flight: Tasks the runner submits before waiting for one to
            finish; 1 for this process, so each result is written before the
            next task starts.
    """

    executor: Executor
    n_slots: int
    description: str
    max_in_flight: int = 1


def _init_worker(parent_pid: int) -> None:
    """Process-pool worker start: one torch thread; ends with ``parent_pid``, and Ctrl-C is the parent's business.

    The worker's own parent is a fork server, which outlives this process's
    death while its workers hold it open, so the worker watches the process
    that started the pool (:func:`learnact._processes.become_worker`).
    """
    become_worker(parent_pid)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def _stop_process_pool(pool: ProcessPoolExecutor) -> None:
    """Stop workers now, dropping tasks not yet started (used on errors and Ctrl-C)."""
    pool.shutdown(wait=False, cancel_futures=True)
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


@contextmanager
def _process_pool(workers: int) -> Iterator[ExecutorPool]:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # workers fork from a server that has imported torch once (no effect if the server already runs); the
        # server also ends without its interpreter teardown (learnact.reporting._fork_server): it holds the
        # command's output, and tearing down torch kept a reader of that output waiting up to a second
        context.set_forkserver_preload(["learnact.experiment.engines", "sklearn.datasets",
                                        "learnact.reporting._fork_server"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(os.getpid(),))
    try:
        yield ExecutorPool(pool, workers, f"processes: {workers} workers ({method})", 2 * workers)
    except BaseException:
        _stop_process_pool(pool)
        raise
    pool.shutdown(wait=True)


def _connect_dask(address: str, timeout_s: float) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--executor dask needs Dask distributed, which is not installed; install it with "
                          "`pip install 'learnact[cluster]'`") from None
    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except Exception as exc:  # OSError on time-out, ValueError on a bad address, others from odd peers
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r} within {timeout_s:g} s ({reason}); check the "
            f"address (the `dask scheduler` command prints it, e.g. tcp://HOST:8786) and that the scheduler "
            f"is running and reachable from here") from None


@contextmanager
def _dask_pool(address: str, timeout_s: float) -> Iterator[ExecutorPool]:
    client = _connect_dask(address, timeout_s)
    try:
        n_threads = sum(client.nthreads().values())
        executor = client.get_executor(pure=False)
        n_workers = len(client.nthreads())
        slots = max(1, n_threads)
        yield ExecutorPool(executor, slots,
                           f"dask at {client.scheduler.address}: {n_workers} workers, {n_threads} threads", 2 * slots)
        executor.shutdown(wait=True)
    finally:
        client.close()


@contextmanager
def open_executor(kind: str = "local", *, workers: int | None = None, scheduler: str | None = None,
                  connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> Iterator[ExecutorPool]:
    """Open an executor for the ``with`` block and shut it down afterwards.

    Args:
        kind: ``"local"`` (this process), ``"processes"`` (a pool of worker
            processes on this machine) or ``"dask"`` (a Dask distributed cluster).
        workers: Worker processes for ``"processes"`` (default: the CPU count; at most
            :func:`~learnact._processes.most_processes`, 4 per core this process may use).
        scheduler: Scheduler address for ``"dask"`` (``tcp://HOST:8786``).
        connect_timeout_s: How long to try reaching the scheduler.

    Raises:
        ConfigError: Unknown kind, an option that does not fit it (more
            workers than :func:`~learnact._processes.most_processes`, a timeout
            that is not a finite number > 0), Dask not installed, or the
            scheduler not reachable in time.
    """
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r}; valid: {', '.join(EXECUTORS)}")
    if workers is not None and kind != "processes":
        raise ConfigError(f"--workers applies to --executor processes, got --executor {kind}; drop --workers "
                          f"(a Dask cluster has as many workers as were started)")
    if scheduler is not None and kind != "dask":
        raise ConfigError(f"--scheduler applies to --executor dask, got --executor {kind}; add --executor dask")
    if kind == "dask" and not scheduler:
        raise ConfigError("--executor dask needs --scheduler ADDRESS (e.g. tcp://HOST:8786, printed by "
                          "`dask scheduler`)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    most = most_processes()
    if workers is not None and workers > most:
        raise ConfigError(f"--workers {workers} is more than learnact takes (at most {most}, {PROCESSES_PER_CORE} "
                          f"per core of the {most // PROCESSES_PER_CORE} this process may use); give fewer, or "
                          f"leave it out for the default")
    if not (isinstance(connect_timeout_s, (int, float)) and math.isfinite(connect_timeout_s)
            and connect_timeout_s > 0):
        raise ConfigError(f"--connect-timeout must be > 0 seconds and finite, got {connect_timeout_s!r}")
    if kind == "local":
        executor = InProcessExecutor()
        yield ExecutorPool(executor, 1, "local: this process")
        executor.shutdown()
    elif kind == "processes":
        with _process_pool(workers or os.cpu_count() or 1) as pool:
            yield pool
    else:
        assert scheduler is not None
        with _dask_pool(scheduler, connect_timeout_s) as pool:
            yield pool
