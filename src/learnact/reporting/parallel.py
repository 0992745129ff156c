"""Report work spread over worker processes: forks of a helper forked from the caller, else a fork server's.

Where the calling process may fork (Linux, no thread but the ones
:func:`learnact._processes.can_fork` knows to be safe: ``learnact run`` and
``learnact report``), the workers start from a helper (:class:`_Helper`): a
fork of the caller that imports what drawing needs (matplotlib, the figure
modules, fontTools' subsetter: about 0.45 s of CPU) and forks the workers from
itself, so they have the caller's modules (numpy, pandas, the study code,
torch in ``learnact run``) and the function they apply without importing or
unpickling anything. ``learnact report`` of the paper study took 4.1 s
against 4.6 s from a fork server (medians of six interleaved pairs, 2 cores;
0.5 s of CPU less).

Elsewhere (another OS, or a caller running other threads, such as a notebook
kernel: a fork copies whatever lock another thread holds, and the child can
hang on it) they start from a fork server (a fresh interpreter that imported
:data:`PRELOAD` once) or are spawned. Each worker runs
:func:`learnact._processes.become_worker` first, so it ends with the process
it works for and leaves Ctrl-C to it; a helper ends with its caller, and its
workers with it.

Results come back in the order of the inputs; a worker's exception is raised
in the caller as it was raised in the worker.

:func:`warm_up` starts the helper (or the fork server) ahead of time, where the
caller has other work to do on one core first (``learnact run`` timing step
costs, writing run folders and printing the leaderboard after training); a
fork server can also import PyTorch there (about 2 s), for workers that
evaluate activations themselves: a suite's data-set reports (a helper forked
from ``learnact run`` has it already). One study's figures get the activation
shapes from a caller that has torch loaded
(:attr:`~learnact.reporting.figures.FigureSpec.prepare`).
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from .._blas import one_thread_loaded
from .._processes import available_cores, become_worker, can_fork, name_process

__all__ = ["MAX_RUNS_PER_FIGURE", "MIN_RUNS", "PRELOAD", "WORKERS_ENV", "auto_workers", "default_workers",
           "map_in_processes", "warm_up", "workers_have_this_process"]

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
    """Start the report workers' helper now; it imports :data:`DRAWING` and ``extra`` in the background.

    Returns at once. Where this process may fork (:func:`_forks_helper`), the
    helper is a fork of it (:class:`_Helper`): it has every module this
    process has loaded (numpy, pandas, the study code) and imports only what
    drawing needs. Elsewhere it is the fork server, a fresh interpreter that
    imports :data:`PRELOAD` and ``extra``. The next :func:`map_in_processes`
    call starts its workers from it (a helper already started is kept as it is).
    Call it where this process has work for one core first, so the imports use
    the other.

    Args:
        extra: More modules to import there, such as ``"torch"`` (about 2 s in the fork server; nothing where
            this process has loaded it): worth it only where the caller's own work hides the wait.

    Returns:
        Whether a helper or fork server runs now (``False`` where there is none: workers are then spawned).
    """
    global _HELPER
    if _forks_helper():
        if _HELPER is None:
            _HELPER = _Helper(extra)
        return True
    if _start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload([*PRELOAD, *extra])
    forkserver.ensure_running()
    return True


def _init(parent_pid: int, fn: bytes | None) -> None:
    """A report worker's start: end with ``parent_pid``; keep the pickled function ``fn`` of the call it serves
    (``None`` in a worker forked from a :class:`_Helper`, which inherits the function unpickled)."""
    global _PICKLED
    become_worker(parent_pid)
    if fn is not None:
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
        fn: A module-level function (or a ``functools.partial`` of one): it is pickled to the workers (to a
            fork server's, or a helper started ahead by :func:`warm_up`).
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
    n = _processes_for(workers, len(todo))
    if n <= 1:
        if meanwhile is not None:
            meanwhile()
        out = []
        for i, item in enumerate(todo):
            out.append(fn(item))
            if on_done is not None:
                on_done(i, out[-1])
        return out
    global _HELPER
    helper, _HELPER = _HELPER, None  # a helper serves one call
    if helper is None and _forks_helper():
        helper = _Helper((), (fn, todo, n))  # forked now: it has fn and the items as they are here
    if helper is not None:
        return helper.map(fn, todo, n, on_done, meanwhile)
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


DRAWING = ("learnact.reporting.figures", "learnact.reporting.drawing", "learnact.reporting.report", "fontTools.subset")
"""What a :class:`_Helper` imports before it forks the workers: what drawing a figure loads (matplotlib, the
figure modules, the figure saver and PDFium, fontTools' subsetter). The rest (numpy, pandas, the study code) it
has from the process it was forked from."""

PROCESS_NAME = "learnact-report"
"""A :class:`_Helper`'s name in the task list (``/proc/PID/comm``), and its workers': a fork carries its parent's
command line, so the name tells them from the command and its training workers (``top``, the benchmark)."""

_HELPER: _Helper | None = None
"""This process's helper started by :func:`warm_up` and not yet used by :func:`map_in_processes`."""


def workers_have_this_process(workers: int | None, items: int) -> bool:
    """Whether :func:`map_in_processes` with ``workers`` over ``items`` items runs them in forks of this process
    (through its helper), which have every module it has loaded (torch in ``learnact run``); ``False`` where it
    runs them here, or in a fork server's or spawned workers."""
    return _processes_for(workers, items) > 1 and (_HELPER is not None or _forks_helper())


def _processes_for(workers: int | None, items: int) -> int:
    """The processes :func:`map_in_processes` uses for ``items`` items (1: everything in this process)."""
    return min(items, workers if workers is not None else default_workers())


def _forks_helper() -> bool:
    """Whether the report's workers start from a fork of this process: on Linux, where no other thread runs
    (:func:`learnact._processes.can_fork`; a fork copies whatever lock another thread holds)."""
    return sys.platform.startswith("linux") and can_fork(True)


class _Helper:
    """A fork of this process that imports the drawing code and forks the workers of one :func:`map_in_processes`
    call from itself.

    A fresh fork server imported numpy, pandas and the study code again
    (about 0.8 s of CPU before the first worker; 0.45 s for what drawing
    adds), and each of its workers unpickled the function (the study view)
    again. The helper has all of this process's modules, unpickles the
    function once, and its workers inherit it (one copy each, as before).
    It sends each result back as its item finishes and ends after the call;
    it ends with this process, and its workers with it
    (:func:`learnact._processes.become_worker`).

    Args:
        extra: More modules to import in the helper (see :func:`warm_up`).
        request: ``(fn, items, workers)`` of the call, where the helper is forked for it (they reach it through
            the fork); ``None`` for a helper started ahead (:func:`warm_up`): :meth:`map` sends the call.
    """

    def __init__(self, extra: tuple[str, ...], request: tuple[Callable[[Any], Any], list[Any], int] | None = None):
        from multiprocessing.connection import Pipe

        parent = os.getpid()
        ours, theirs = Pipe()
        for stream in (sys.stdout, sys.stderr):  # nothing buffered here is written again by a worker's exit
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the helper (coverage does not follow a fork ending in os._exit)
            code = 1
            try:
                ours.close()
                _serve(theirs, parent, extra, request)
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        self._pid: int | None = pid
        self._conn = ours
        self._sent = request is not None

    def map(self, fn: Callable[[T], R], todo: list[T], n: int, on_done: Callable[[int, R], None] | None,
            meanwhile: Callable[[], object] | None) -> list[R]:
        """:func:`map_in_processes` of ``fn`` over ``todo`` on ``n`` workers forked from the helper."""
        from concurrent.futures.process import BrokenProcessPool

        broken = ("a report worker process ended abruptly (killed, or out of memory?); rerun `learnact report "
                  "STUDY`")
        try:
            if not self._sent:  # the helper's reader takes it while it imports; fn as it is before meanwhile
                pickled = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
                try:
                    self._conn.send((pickled, todo, n))
                except OSError:  # the helper is gone (killed since it was started)
                    raise BrokenProcessPool(broken) from None
            if meanwhile is not None:
                meanwhile()
            out: list[Any] = [None] * len(todo)
            for _ in todo:
                try:
                    kind, i, value = self._conn.recv()
                except (EOFError, OSError):
                    raise BrokenProcessPool(broken) from None
                if kind == "raise":
                    raise value
                out[i] = value
                if on_done is not None:
                    on_done(i, value)
            self._end(wait=True)
            return out
        except BaseException:
            self._end(wait=False)
            raise

    def _end(self, wait: bool) -> None:
        """Close the connection and reap the helper (``wait=False``: kill it first; its workers end with it)."""
        self._conn.close()
        pid, self._pid = self._pid, None
        if pid is None:
            return
        if not wait:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:  # reaped elsewhere already (a caller's own child handling)
            pass


def _one_torch_thread() -> None:
    """One intra-op thread for PyTorch in a helper and its workers, where the caller has it loaded.

    A fork of a process whose PyTorch ran an operation on several threads
    (OpenMP's pool) hangs in its own first such operation: the pool's threads
    are not copied by the fork, and the child waits for them. With one thread
    PyTorch runs every operation in the calling thread, as the training
    workers do (:mod:`learnact.training.scheduling`). A suite's data-set
    reports evaluate activations in the workers; one study's figures get them
    evaluated in the caller (:attr:`~learnact.reporting.figures.FigureSpec.prepare`).
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _send_failure(conn: Any, exc: BaseException) -> None:
    """Send ``exc`` for :meth:`_Helper.map` to raise; one that cannot be pickled goes as its type and message."""
    try:
        conn.send(("raise", None, exc))
    except Exception:  # noqa: BLE001
        conn.send(("raise", None, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _receive(conn: Any, box: dict[str, Any]) -> None:
    """In a helper, on a thread: the call :meth:`_Helper.map` sends (``None`` when the caller closed first; the
    exception where its function cannot be unpickled here)."""
    try:
        pickled, items, n = conn.recv()
        box["request"] = (pickle.loads(pickled), items, n)
    except (EOFError, OSError):
        box["request"] = None
    except Exception as exc:  # noqa: BLE001 - raised in the caller, as a fork server's worker would have
        box["request"] = exc


def _serve(conn: Any, parent: int, extra: tuple[str, ...],
           request: tuple[Callable[[Any], Any], list[Any], int] | None) -> None:
    """A :class:`_Helper`'s work: import, take the call, fork its workers, send each result as it comes."""
    global _UNPICKLED
    # What the caller held when it forked this helper (a trained study's artefacts, models) is out of the
    # collections its imports set off: each walked those objects, writing to their pages, which the fork then
    # copied (0.1 CPU-s of the helper's 0.6 beside the caller's bookkeeping after training; 30,000 page faults
    # against 16,000, in a fork of a process holding 300,000 such objects)
    gc.freeze()
    become_worker(parent)
    name_process(PROCESS_NAME)
    one_thread_loaded()  # the caller's numpy is loaded: learnact._blas tells its OpenBLAS
    _one_torch_thread()
    box: dict[str, Any] = {"request": request}  # the call; None (the caller closed), or why it cannot be read
    reader = None
    if request is None:  # read while importing: the caller's send of the study view never waits for the imports
        reader = threading.Thread(target=_receive, args=(conn, box), name="learnact-report-reader", daemon=True)
        reader.start()
    failed: BaseException | None = None
    try:
        for name in DRAWING:
            importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - raised in the caller (matplotlib missing, say), not a broken pipe
        failed = exc
    for name in extra:  # a head start only, as in the fork server's preload: what fails is imported where needed
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if reader is not None and failed is None:  # started ahead, so most likely waiting for the call: a first
        try:  # figure's set-up, done once here instead of in each worker (about 0.1 s of CPU each)
            from .drawing import warm_up_drawing

            warm_up_drawing()
        except Exception:  # noqa: BLE001 - only a head start: the workers' first figures do it and report errors
            pass
    gc.freeze()  # the modules, this process's copy of its caller: out of the workers' collections
    if reader is not None:
        reader.join()  # before the workers fork: no other thread then
    request = box["request"]
    if request is None:
        return
    if failed is None and isinstance(request, BaseException):
        failed = request
    if failed is not None:
        _send_failure(conn, failed)
        return
    fn, items, n = request
    _UNPICKLED = fn  # the workers inherit it: one copy each, never pickled again
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork"), initializer=_init,
                               initargs=(os.getpid(), None))
    futures: list[Future[Any]] = []
    try:
        futures = [pool.submit(_call_pickled, item) for item in items]
        for i, result in _in_completion_order(futures):
            conn.send(("done", i, result))
    except BaseException as exc:  # a worker's exception (or a broken pool): raised in the caller as it was
        _send_failure(conn, exc)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
