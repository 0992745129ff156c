"""Report work spread over worker processes started by a fork server (or spawned), never forked from the caller.

``learnact run`` builds the report in the process that just trained: torch's
and rich's threads are live there, and a plain ``fork`` of such a process can
hang on a lock one of them held. Workers therefore start from a fork server
(a fresh interpreter that imported :mod:`learnact.reporting` once) or, where
there is none, are spawned. Each runs :func:`learnact._processes.become_worker`
first, so it ends with the process it works for and leaves Ctrl-C to it.

Results come back in the order of the inputs; a worker's exception is raised
in the caller as it was raised in the worker.

Starting the fork server (a Python process importing the reporting code:
pandas, matplotlib) takes about 1.5 s on 2 cores. :func:`warm_up` starts it
ahead of time, in the background, where the caller has other work to do on
one core first (``learnact run`` writing run folders and printing the
leaderboard after training); it can also import PyTorch there (about 2 s), for
workers that evaluate activations themselves: a suite's data-set reports. One
study's figures get the activation shapes from a caller that has torch loaded
(:attr:`~learnact.reporting.figures.FigureSpec.prepare`).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from .._processes import available_cores, become_worker

__all__ = ["MAX_RUNS_PER_FIGURE", "MIN_RUNS", "PRELOAD", "WORKERS_ENV", "auto_workers", "default_workers",
           "map_in_processes", "warm_up"]

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV = "LEARNACT_REPORT_WORKERS"
"""Environment variable: the most worker processes a report uses (``1``: build everything in this process)."""


def default_workers() -> int:
    """The cores this process may use, or :data:`WORKERS_ENV` when set to a positive integer."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"{WORKERS_ENV}={raw!r} is not an integer; set it to the number of report "
                             f"worker processes (1: none)") from None
        if n < 1:
            raise ValueError(f"{WORKERS_ENV}={raw!r} must be >= 1 (1: build the report in this process)")
        return n
    return available_cores()


MIN_RUNS = 40
"""Runs a study needs before its report uses worker processes by default: starting them (a fork server that
imports the reporting code) costs about 4 s on 2 cores, more than a small study's figures take one by one."""


MAX_RUNS_PER_FIGURE = 400
"""Runs above which one study's figures render in this process by default: every figure worker reads the run
folders it draws from (histories, gates, predictions) again, and at 1,005 runs that cost more than the second
core saved (57 s against 40 s on 2 cores). A suite's data sets, each read by one worker, are not limited."""


def auto_workers(n_runs: int, per_figure: bool = True) -> int:
    """Report workers for ``n_runs`` runs: :data:`WORKERS_ENV` when set; else every core from :data:`MIN_RUNS`
    runs on (for one study's figures, up to :data:`MAX_RUNS_PER_FIGURE`); else 1.

    Args:
        n_runs: Runs the report draws.
        per_figure: Workers share one study's figures (``True``) or build a suite's data sets (``False``).
    """
    if os.environ.get(WORKERS_ENV, "").strip():
        return default_workers()
    if n_runs < MIN_RUNS or (per_figure and n_runs > MAX_RUNS_PER_FIGURE):
        return 1
    return default_workers()


PRELOAD = ("learnact.reporting._server_blas", "learnact.reporting.figures", "learnact.reporting.drawing",
           "learnact.reporting.report", "fontTools.subset", "learnact.reporting._fork_server")
"""Modules the fork server imports before it forks a worker: every worker starts with them loaded. First,
:mod:`._server_blas`: one OpenBLAS thread in the server and its workers, set before numpy loads (each OpenBLAS
pool's threads spun about 0.12 s of CPU, taken from the work beside them: :mod:`learnact._blas`). Then the
report's own code and what drawing imports on first use: fontTools' subsetter (the fonts of every PDF figure),
about 0.1 s that each worker paid again. Not scipy's special functions: the figures' t intervals come with the
study view (:func:`~.figures.build_figures` computes its seed aggregates before it hands the figures out), and
the server's imports were the report's critical path (a suite's server, whose workers build tables, imports them:
``learnact run`` asks for them in :func:`warm_up`'s ``extra``). Last,
:mod:`._fork_server`: the server then ends without tearing its interpreter down (0.3-0.8 s during which a reader
of the command's output waited for it to close)."""


def _start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def warm_up(extra: tuple[str, ...] = ()) -> bool:
    """Start the report workers' fork server now; it imports :data:`PRELOAD` and ``extra`` in the background.

    Returns at once. The workers :func:`map_in_processes` starts later fork from
    this server with those modules loaded (a server already running is kept
    as it is). Call it where this process has work for one core first, so the
    imports use the other.

    Args:
        extra: More modules to import there, such as ``"torch"`` (about 2 s):
            worth it only where the caller's own work hides the wait.

    Returns:
        Whether a fork server runs now (``False`` where there is none: workers are then spawned).
    """
    if _start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload([*PRELOAD, *extra])
    forkserver.ensure_running()
    return True


def _init(parent_pid: int, fn: bytes) -> None:
    """A report worker's start: end with ``parent_pid``; keep the pickled function ``fn`` of the call it serves."""
    global _PICKLED
    become_worker(parent_pid)
    _PICKLED = fn
    os.environ[WORKERS_ENV] = "1"  # a worker's own report work (a data set's figures) stays in it
    import matplotlib

    matplotlib.use("Agg")
    # What the worker holds now (the modules the server preloaded, matplotlib's state) lives as long as the
    # worker: out of the garbage collector's way. Drawing makes many short-lived objects, and each full
    # collection walked every one of those module objects again (about 5% of a report's CPU time).
    gc.freeze()
    # and fewer collections: a figure allocates hundreds of thousands of short-lived objects (matplotlib's artists
    # and transforms), and the youngest generation's default threshold (700) set off a collection every few
    # hundred of them; they took about 4% of drawing the paper study's figures, 2% at this threshold (measured with
    # gc.callbacks), for about 5% more memory in a worker
    gc.set_threshold(WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])


def map_in_processes(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None,
                     on_done: Callable[[int, R], None] | None = None,
                     meanwhile: Callable[[], object] | None = None) -> list[R]:
    """``[fn(item) for item in items]``, over up to ``workers`` processes.

    Args:
        fn: A module-level function (or a ``functools.partial`` of one): it is pickled to the workers.
        items: Its arguments, each picklable.
        workers: Most processes (default :func:`default_workers`); with 1, or a single item, everything
            runs in this process.
        on_done: Called in this process as each item finishes, with its index and result (progress lines).
        meanwhile: Called once in this process while the workers start and work (before the first item when
            everything runs here). It may change what ``fn`` holds (caches filled, for instance): the workers
            get ``fn`` as it was pickled here before ``meanwhile`` starts, never a copy taken halfway. The items
            are pickled to the workers in the background meanwhile, so it must not change them.

    Each worker unpickles ``fn`` once and applies that copy to every item it
    takes, as this process applies ``fn`` to every item when it runs them
    itself: what ``fn`` caches on one item (a study view's runs, read once)
    serves the next one there.

    Returns:
        The results, in the order of ``items``.
    """
    todo = list(items)
    n = min(len(todo), workers if workers is not None else default_workers())
    if n <= 1:
        if meanwhile is not None:
            meanwhile()
        out = []
        for i, item in enumerate(todo):
            out.append(fn(item))
            if on_done is not None:
                on_done(i, out[-1])
        return out
    method = _start_method()
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(list(PRELOAD))  # used only if no server runs yet (see warm_up)
    # fn is pickled once, here (the pool pickles each task in a background thread, and a dict that meanwhile
    # fills could change size while it is pickled), and goes to each worker once, as it starts (a pool, and so
    # each of its workers, serves one call); the tasks carry the items alone. (Sent with every task, the paper
    # study's view, 1.6 MB, was pickled, piped and read 12 times: about 0.1 s of CPU beside the drawing.)
    pickled = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
    with ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=_init,
                             initargs=(os.getpid(), pickled)) as pool:
        futures: list[Future[R]] = [pool.submit(_call_pickled, item) for item in todo]
        try:
            if meanwhile is not None:
                meanwhile()
            for i, result in _in_completion_order(futures):
                if on_done is not None:
                    on_done(i, result)
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


WORKER_GC_THRESHOLD = 20_000
"""The youngest generation's collection threshold in a report worker (Python's default: 700)."""

_PICKLED: bytes | None = None
"""In a worker: the pickled function of the call it serves, as it came with the worker's start."""

_UNPICKLED: Callable[[Any], Any] | None = None
"""In a worker: that function, unpickled on its first item."""


def _call_pickled(item: Any) -> Any:
    """In a worker: the function of the call it serves applied to ``item``; the function is unpickled on the
    worker's first item and kept for its later ones (with what it cached on the earlier items)."""
    global _PICKLED, _UNPICKLED
    if _UNPICKLED is None:
        assert _PICKLED is not None  # _init keeps it
        _UNPICKLED, _PICKLED = pickle.loads(_PICKLED), None
    return _UNPICKLED(item)


def _in_completion_order(futures: list[Future[Any]]) -> Iterator[tuple[int, Any]]:
    from concurrent.futures import as_completed

    index = {id(f): i for i, f in enumerate(futures)}
    for f in as_completed(futures):
        yield index[id(f)], f.result()
