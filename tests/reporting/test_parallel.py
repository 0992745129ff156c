"""Report work in worker processes: results in input order, errors raised as they were, no fork of a threaded caller.

Workers start from a fork of the caller (``parallel._Helper``) where the caller may fork (Linux, no other thread:
a pytest-xdist worker, the ``learnact`` command), else from the fork server. Tests of the fork server's own
properties take that path (``_no_helper``); the rest run on whichever path this process gets, and
``test_the_fork_server_path_*`` / ``test_a_helper_*`` pin each."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from learnact.reporting.parallel import WORKER_GC_THRESHOLD, WORKERS_ENV, default_workers, map_in_processes
from subprocesses import run_case, waits_for


def _pid_and_square(x: int) -> tuple[int, int, str, int]:
    import multiprocessing

    return os.getpid(), x * x, multiprocessing.get_start_method(), os.getppid()


@pytest.fixture
def _no_helper(monkeypatch):
    """The fork server's path, as where this process may not fork (another thread, another OS)."""
    from learnact.reporting import parallel

    monkeypatch.setattr(parallel, "_forks_helper", lambda: False)


def _fails_on_three(x: int) -> int:
    if x == 3:
        raise KeyError(f"item {x}")
    return x


def test_results_come_back_in_order_from_other_processes():
    done = []
    out = map_in_processes(_pid_and_square, range(6), workers=2, on_done=lambda i, r: done.append(i))
    assert [r[1] for r in out] == [x * x for x in range(6)]
    assert os.getpid() not in {r[0] for r in out}
    for _pid, _square, method, parent in out:  # never a fork of this process itself: a fork server's, or a helper's
        assert method in ("forkserver", "spawn") or parent != os.getpid()
    assert sorted(done) == list(range(6))


def test_the_fork_server_path_where_another_thread_runs():
    # a fork copies whatever lock another thread holds: with one running, no helper is forked from this process
    import threading

    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, name="some-library-thread")
    busy.start()
    try:
        out = map_in_processes(_pid_and_square, range(4), workers=2)
    finally:
        stop.set()
        busy.join()
    assert [r[1] for r in out] == [0, 1, 4, 9]
    assert {r[2] for r in out} <= {"forkserver", "spawn"}


class _Remembers:
    """A callable that keeps every item it was applied to (as a study view keeps the runs a figure read)."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, x: int) -> tuple[int, list[int]]:
        self.seen.append(x)
        return os.getpid(), list(self.seen)


@pytest.mark.parametrize("meanwhile", [None, lambda: None], ids=["alone", "with-meanwhile"])
def test_each_worker_applies_one_copy_of_the_function_to_all_its_items(meanwhile):
    # as in this process: what the function caches on one item serves the next ones in that worker
    out = map_in_processes(_Remembers(), range(8), workers=2, meanwhile=meanwhile)
    by_pid: dict[int, list[int]] = {}
    for x, (pid, seen) in enumerate(out):
        assert seen[-1] == x
        by_pid.setdefault(pid, []).append(x)
    for pid, items in by_pid.items():
        longest = max((seen for p, seen in out if p == pid), key=len)
        assert sorted(longest) == items  # one copy per worker saw every item that worker took
    # a later call starts from a fresh copy, not from what the last one cached
    again = map_in_processes(_Remembers(), [100, 101], workers=2)
    assert all(set(seen) <= {100, 101} for _, seen in again)


class _Heavy(_Remembers):
    """A function holding 1 MB (as a figure function holds the study view)."""

    def __init__(self) -> None:
        super().__init__()
        self.payload = bytes(1_000_000)


def test_the_function_goes_to_each_worker_once_and_the_tasks_carry_items(monkeypatch, _no_helper):
    # the pool pickles each task into a pipe: with the function in every task, 12 figures sent the paper study's
    # view 12 times
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    sent: list[int] = []
    submit = ProcessPoolExecutor.submit

    def recording(self, fn, /, *args, **kwargs):
        sent.append(len(pickle.dumps((fn, args, kwargs))))
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", recording)
    out = map_in_processes(_Heavy(), range(6), workers=2)
    assert [seen[-1] for _, seen in out] == list(range(6))
    assert len(sent) == 6 and max(sent) < 10_000


def test_one_worker_runs_in_this_process():
    out = map_in_processes(_pid_and_square, [2, 3], workers=1)
    assert [r[:2] for r in out] == [(os.getpid(), 4), (os.getpid(), 9)]


def test_meanwhile_runs_here_while_the_workers_work(tmp_path):
    # The workers wait for a file only the caller's meanwhile work creates: had it run after them, they would
    # have given up (the report builds its tables so while the figures draw).
    flag = tmp_path / "tables-built"
    order = []
    out = map_in_processes(waits_for, [str(flag)] * 2, workers=2, meanwhile=lambda: flag.touch())
    assert out == [True, True]
    # in one process, meanwhile comes first
    map_in_processes(order.append, ["item"], workers=1, meanwhile=lambda: order.append("meanwhile"))
    assert order == ["meanwhile", "item"]


def _read_state(state: dict, key: str) -> str:
    return state["phase"]


def test_workers_get_fn_as_it_was_before_meanwhile_changed_it():
    # The pool pickles tasks in a background thread, some only after meanwhile has run: fn (here a dict it holds,
    # as the report's view holds its caches) is pickled once before, so every worker sees the same state.
    import functools

    state = {"phase": "before"}

    def change():
        state["phase"] = "after"
        state.update({f"cache{i}": i for i in range(1000)})

    out = map_in_processes(functools.partial(_read_state, state), [str(i) for i in range(8)], workers=2,
                           meanwhile=change)
    assert out == ["before"] * 8 and state["phase"] == "after"


def test_a_workers_exception_is_raised_here():
    with pytest.raises(KeyError, match="item 3"):
        map_in_processes(_fails_on_three, range(5), workers=2)


def test_the_worker_count_can_be_set_and_a_bad_one_is_named(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert default_workers() == 3
    monkeypatch.setenv(WORKERS_ENV, "many")
    with pytest.raises(ValueError, match=f"{WORKERS_ENV}='many' is not an integer"):
        default_workers()
    monkeypatch.setenv(WORKERS_ENV, "0")
    with pytest.raises(ValueError, match="must be >= 1"):
        default_workers()


def test_small_and_large_studies_stay_in_one_process_unless_told(monkeypatch):
    from learnact.reporting.parallel import MAX_RUNS_PER_FIGURE, MIN_RUNS, auto_workers

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert auto_workers(MIN_RUNS - 1) == 1
    assert auto_workers(MIN_RUNS) == default_workers()
    assert auto_workers(MAX_RUNS_PER_FIGURE + 1) == 1  # figure workers would each read the run folders again
    assert auto_workers(MAX_RUNS_PER_FIGURE + 1, per_figure=False) == default_workers()  # a suite's data sets
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert auto_workers(3) == 2


_PROBE = '''
import sys

def loaded(name):
    return name in sys.modules
'''

_WARM = '''
import sys
from learnact.reporting.parallel import map_in_processes, warm_up
import probe
if sys.argv[1] == "warm":
    assert warm_up(("xml.dom.minidom",))
print(map_in_processes(probe.loaded, ["xml.dom.minidom", "learnact.reporting.figures"], workers=2))
'''


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="warm_up starts a fork server; this platform spawns report workers instead")
def test_warm_up_starts_workers_with_the_reporting_code_and_extra_modules_loaded(tmp_path):
    # In a fresh interpreter (this one may already run a fork server): a worker of a warmed-up server finds the
    # extra module imported before its first task; without warm_up it finds the reporting code only.
    import subprocess
    import sys

    (tmp_path / "probe.py").write_text(_PROBE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    got = {}
    for mode in ("warm", "cold"):
        proc = subprocess.run([sys.executable, "-c", _WARM, mode], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
        assert proc.returncode == 0, proc.stderr
        got[mode] = proc.stdout.strip().splitlines()[-1]
    assert got == {"warm": "[True, True]", "cold": "[False, True]"}


_DRAW = """
import json, sys
from learnact.reporting import parallel
if sys.argv[-1] == "server":  # the fork server's path, as where the caller may not fork
    parallel._forks_helper = lambda: False
from _draw_probe import draw_and_list_imports
from learnact.reporting.parallel import map_in_processes
names = sys.argv[3:-1]
jobs = [(sys.argv[1], sys.argv[2], name) for name in names]
print(json.dumps(dict(zip(names, map_in_processes(draw_and_list_imports, jobs, workers=2)))))
"""

_DRAW_VIEW = """
import functools, json, sys
from learnact.reporting import parallel
if sys.argv[-1] == "server":  # the fork server's path, as where the caller may not fork
    parallel._forks_helper = lambda: False
from _draw_probe import draw_from_view
from learnact.reporting.figures import FIGURES
from learnact.reporting.parallel import map_in_processes
from learnact.reporting.study_view import load_study_view
view = load_study_view(sys.argv[1])
view.aggregates  # as build_figures does before it hands the figures out
names = [spec.name for spec in FIGURES]
print(json.dumps(dict(zip(names, map_in_processes(functools.partial(draw_from_view, view, sys.argv[2]), names,
                                                  workers=2)))))
"""


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="the preload list is a fork server's; this platform spawns report workers instead")
@pytest.mark.parametrize("path", ["server", "helper"])
def test_figure_workers_start_with_what_drawing_imports(tiny_study, tmp_path, path):
    """A helper (a fork of the caller) imports what drawing needs before it forks the workers, and they inherit the
    caller's modules as well: no worker imports the font subsetter while drawing, and nothing the caller had.

    The fork server imports fontTools' subsetter (every PDF figure's fonts) once, before it forks the workers:
    no worker imports it again. No figure needs scipy's special functions there: the figures' t intervals come
    with the study view, whose seed statistics build_figures computes before it hands the figures out (as the
    probe does); the server, whose imports were the report's critical path, no longer loads them. Every figure of
    the registry, on the tiny study (fixed, gated and family variants).

    In a fresh interpreter: a fork server runs once per process, with the preload list of whoever started it, and
    this one may already run one started by the process executor (another list). The leaderboard embeds a font
    (drawn first in a fresh process, it imports the subsetter); whichever worker draws a figure first would import
    it there."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from learnact.reporting.figures import FIGURES

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _DRAW, str(tiny_study), str(tmp_path), "leaderboard", "roc", path],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    # fontTools' subsetter came with the fork server (scipy's special functions only with a view without its
    # seed statistics, which drawing then computes: never what build_figures hands out, checked next)
    assert set(imported) == {"leaderboard", "roc"} and not any("fontTools.subset" in m for m in imported.values())
    done = subprocess.run([sys.executable, "-c", _DRAW_VIEW, str(tiny_study), str(tmp_path), path], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(loaded) == {spec.name for spec in FIGURES}
    # the server: never scipy's special functions; a helper's workers have them from the caller, which computed
    # the seed statistics (as build_figures does), at no cost
    wanted = ["fontTools.subset"] if path == "server" else ["fontTools.subset", "scipy.special"]
    assert all(mods == wanted for mods in loaded.values()), loaded


_SERVE_AND_EXIT = """
import sys
from learnact.reporting import parallel
if sys.argv[1] != "helper":  # the fork server's path, as where the caller may not fork
    parallel._forks_helper = lambda: False
if sys.argv[1] == "without":
    parallel.PRELOAD = tuple(m for m in parallel.PRELOAD if m != "learnact.reporting._fork_server")
assert parallel.warm_up(("_teardown_marker",))
print(parallel.map_in_processes(abs, [-1, -2], workers=2))
"""


@pytest.mark.parametrize("preload", ["with", "without", "helper"])
def test_the_fork_server_ends_without_its_teardown(tmp_path, preload):
    """The server holds the command's output open until it ends; it ends without freeing its modules one by one
    (0.3-0.8 s with torch loaded). Its module objects are never finalised; without _fork_server in the preload
    list, they are (the check can tell the two apart). A helper (a fork of the caller, where it may fork) ends with
    ``os._exit`` after its call: never finalised either."""
    import subprocess
    import sys
    from pathlib import Path

    marker = tmp_path / "finalised"
    env = {**os.environ, "LEARNACT_TEST_TEARDOWN_MARKER": str(marker),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    # capture_output: run returns once every holder of the output pipes (the fork server too) has closed them
    done = subprocess.run([sys.executable, "-c", _SERVE_AND_EXIT, preload], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1, 2]"
    assert marker.exists() == (preload == "without"), done.stderr


_LAZY_IMPORT_IN_WORKER = """
import multiprocessing
context = multiprocessing.get_context("forkserver")
context.set_forkserver_preload([])
with context.Pool(1) as pool:
    print(pool.apply(eval, ("__import__('learnact.reporting._fork_server').reporting._fork_server.INSTALLED",)))
"""


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="no fork server on this platform")
def test_a_worker_importing_the_exit_module_late_does_not_install_it():
    """Only the server's preload installs the exit handler; a worker of a server that did not preload the module
    (its stack still holds the server's main loop) imports it as any process does: nothing installed."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _LAZY_IMPORT_IN_WORKER], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


_BLAS_IN_WORKERS = """
import json, os, sys
from learnact.reporting import parallel
if sys.argv[-1] == "server":  # the fork server's path, as where the caller may not fork
    parallel._forks_helper = lambda: False
import numpy  # the caller's OpenBLAS starts with a thread per core (no variable set)
from _blas_probe import probe
from learnact.reporting.parallel import map_in_processes
print(json.dumps([os.getpid(), map_in_processes(probe, [0, 1], workers=2)]))
"""


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods()
                    or (os.cpu_count() or 1) < 2,
                    reason="the preload list is a fork server's; one core runs one OpenBLAS thread anyway")
@pytest.mark.parametrize("path", ["server", "helper"])
def test_report_workers_run_one_openblas_thread_and_keep_their_start_out_of_the_collector(path):
    """learnact._blas: the fork server sets OPENBLAS_NUM_THREADS=1 before it loads numpy (first in its preload), so
    no OpenBLAS pool spins in it or its workers beside the other worker's drawing. Each worker then freezes what it
    starts with (the preloaded modules): the collections drawing sets off walk only what was made since, and fewer of
    them start (a higher threshold for the youngest generation).

    A helper (a fork of a caller whose numpy is loaded) sets the variable and tells the loaded libraries before it
    forks the workers.

    In a fresh interpreter (whose fork server this test starts), without the variable in the environment."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", _BLAS_IN_WORKERS, path], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    caller, out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out) == 2 and caller not in {pid for pid, *_ in out}  # drawn in workers (one may take both)
    for _pid, value, threads, tracked, frozen, threshold in out:
        assert value == "1"
        assert threads and all(n == 1 for n in threads), threads
        assert frozen > 10 * tracked, (frozen, tracked)  # the preloaded modules' objects: frozen, not walked
        assert threshold == WORKER_GC_THRESHOLD > 700  # fewer young collections than Python's default


def test_the_seed_aggregates_are_computed_before_any_figure_and_travel_with_the_view(tiny_study, tmp_path,
                                                                                     monkeypatch):
    # Most figures and the report's tables read the seed aggregates: build_figures computes them once, before a
    # figure is drawn, so the copy of the view each worker gets carries them (no worker computes them again).
    from learnact.reporting import figures, load_study_view

    seen: list[bool] = []
    original = figures._render

    def render(view, folder, note, spec):
        seen.append("aggregates" in view.__dict__)
        return original(view, folder, note, spec)

    monkeypatch.setattr(figures, "_render", render)
    view = load_study_view(tiny_study)
    assert "aggregates" not in view.__dict__
    figures.build_figures(view, tmp_path, figures.FIGURES[:2], workers=1)
    assert seen == [True, True]


def _family_of_a_worker(_: int) -> tuple[int, int, int]:
    """This worker's pid, its parent's, and its parent's parent (from /proc)."""
    parent = os.getppid()
    with open(f"/proc/{parent}/stat") as stat:
        grandparent = int(stat.read().rsplit(")", 1)[1].split()[1])
    return os.getpid(), parent, grandparent


_helper_only = pytest.mark.skipif(not __import__("sys").platform.startswith("linux"),
                                  reason="a helper is forked on Linux only; elsewhere the fork server serves")


def _case_a_helper_forks_the_workers_and_needs_no_pickling(tmp_path):
    # Where this process may fork, the workers are forks of one helper, itself a fork of this process: they have
    # the function as it was here, never pickled (a lambda closing over a local works), one copy each.
    from learnact.reporting import parallel

    assert parallel._forks_helper()  # a pytest(-xdist) worker runs no other thread
    offset = 10
    out = map_in_processes(lambda x: (x + offset, _family_of_a_worker(x)), range(6), workers=2)
    assert [value for value, _ in out] == list(range(10, 16))
    helpers = {parent for _, (_pid, parent, _gp) in out}
    assert len(helpers) == 1 and os.getpid() not in helpers
    assert {gp for _, (_pid, _parent, gp) in out} == {os.getpid()}


class _CountsPickling(_Remembers):
    """A function that appends a line to a file each time it is pickled."""

    def __init__(self, log: str) -> None:
        super().__init__()
        self.log = log

    def __getstate__(self) -> dict:
        with open(self.log, "a") as out:
            out.write("pickled\n")
        return dict(self.__dict__)


def _case_a_helper_started_ahead_gets_the_function_pickled_once_and_ends_after_the_call(tmp_path):
    from learnact.reporting import parallel

    log = Path(tmp_path) / "pickled.log"
    assert parallel.warm_up()
    helper = parallel._HELPER
    assert helper is not None and helper._pid is not None
    pid = helper._pid
    out = map_in_processes(_CountsPickling(str(log)), range(6), workers=2)
    assert [seen[-1] for _, seen in out] == list(range(6))
    assert log.read_text().splitlines() == ["pickled"]  # once, for the helper; its workers inherit it
    assert parallel._HELPER is None and helper._pid is None  # it served one call and was reaped
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _ends_the_helper(x: int) -> int:
    import signal

    if x == 2:
        os.kill(os.getppid(), signal.SIGKILL)  # the helper this worker was forked from (the OOM killer, say)
        import time

        time.sleep(60)  # killed with it (it ends with its helper)
    return x


def _case_a_helper_killed_mid_call_is_an_error_not_a_hang(tmp_path):
    from concurrent.futures.process import BrokenProcessPool

    with pytest.raises(BrokenProcessPool, match="ended abruptly"):
        map_in_processes(_ends_the_helper, range(4), workers=2)
    assert map_in_processes(abs, [-3, -4], workers=2) == [3, 4]  # the next call gets a new helper


def _case_an_error_here_while_a_helper_works_ends_it(tmp_path):
    from learnact.reporting import parallel

    started: list[int | None] = []
    original = parallel._Helper.__init__

    def recording(self, *args, **kwargs):
        original(self, *args, **kwargs)
        started.append(self._pid)

    parallel._Helper.__init__ = recording

    def fails() -> None:
        raise OSError("disk full while writing the tables")

    with pytest.raises(OSError, match="disk full"):
        map_in_processes(waits_for, ["/nonexistent/flag"] * 2, workers=2, meanwhile=fails)
    assert len(started) == 1 and started[0] is not None
    with pytest.raises(ProcessLookupError):  # killed and reaped at once, not left waiting 60 s for the flag
        os.kill(started[0], 0)
    assert map_in_processes(abs, [-1, -2], workers=2) == [1, 2]


_DRAW_AFTER = """
import sys
from pathlib import Path
from learnact.reporting.drawing import warm_up_drawing
from learnact.reporting.figures import FIGURES, _render
from learnact.reporting.study_view import load_study_view
view = load_study_view(Path(sys.argv[1]))
loaded = "matplotlib.backends.backend_pdf" in sys.modules
if sys.argv[3] == "warm":
    warm_up_drawing()
warmed = "matplotlib.backends.backend_pdf" in sys.modules
for spec in FIGURES:
    _render(view, Path(sys.argv[2]), "", spec)
print(loaded, warmed)
"""


def test_a_warmed_up_process_draws_the_same_files(tiny_study, tmp_path):
    """warm_up_drawing (what a helper started ahead does before it forks the workers) sets up what a first figure
    does, and every figure of the registry, drawn after it, is the same file byte for byte (PDF and PNG)."""
    import subprocess

    files = {}
    for mode in ("cold", "warm"):
        out = tmp_path / mode
        out.mkdir()
        done = subprocess.run([sys.executable, "-c", _DRAW_AFTER, str(tiny_study), str(out), mode],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["False", str(mode == "warm")]
        files[mode] = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith("cost.")}
    assert len(files["cold"]) >= 2 * 10 and files["cold"].keys() == files["warm"].keys()
    assert [name for name in files["cold"] if files["cold"][name] != files["warm"][name]] == []


_WARMED_WORKERS = """
import sys
from learnact.reporting import parallel
import probe
if sys.argv[1] == "ahead":
    assert parallel.warm_up()
print(parallel.map_in_processes(probe.loaded, ["matplotlib.backends.backend_pdf"] * 2, workers=2))
"""


@_helper_only
def test_a_helper_started_ahead_sets_up_drawing_before_it_forks_the_workers(tmp_path):
    # waiting for the call anyway, a helper started ahead draws one small figure first: its workers start with the
    # PDF backend (and the rest of a first figure's set-up) done; one forked for the call goes straight to work
    import subprocess

    (tmp_path / "probe.py").write_text(_PROBE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    got = {}
    for mode in ("ahead", "for-the-call"):
        done = subprocess.run([sys.executable, "-c", _WARMED_WORKERS, mode], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        got[mode] = done.stdout.strip().splitlines()[-1]
    assert got == {"ahead": "[True, True]", "for-the-call": "[False, False]"}


def _refuse_to_load() -> None:
    raise LookupError("this function cannot be rebuilt in another process")


class _Unloadable:
    """A callable that pickles, but whose unpickling raises (a plugin's figure whose module is gone, say)."""

    def __call__(self, x: int) -> int:
        return x

    def __reduce__(self):
        return (_refuse_to_load, ())


def _case_a_function_the_helper_cannot_load_raises_its_error_here(tmp_path):
    from learnact.reporting import parallel

    assert parallel.warm_up()
    with pytest.raises(LookupError, match="cannot be rebuilt"):
        map_in_processes(_Unloadable(), range(3), workers=2)
    assert map_in_processes(abs, [-5, -6], workers=2) == [5, 6]


def _case_a_helper_that_cannot_import_the_drawing_code_says_so(tmp_path):
    # matplotlib missing, say: its ImportError, raised here, not a "worker ended abruptly"
    from learnact.reporting import parallel

    parallel.DRAWING = (*parallel.DRAWING, "learnact_no_such_module")
    assert parallel.warm_up(("another_missing_module",))  # an extra module that fails is only a lost head start
    with pytest.raises(ModuleNotFoundError, match="learnact_no_such_module"):
        map_in_processes(abs, [-1, -2], workers=2)


def _torch_sum(i: int) -> float:
    import torch

    y = torch.ones(600, 600, dtype=torch.float64)
    return float((y @ y).sum() / 600**3 + torch.ones(4_000_000, dtype=torch.float64).exp().sum() * 0) + i


def _case_a_helpers_workers_use_torch_after_the_caller_ran_it_on_several_threads(tmp_path):
    # learnact run's own torch work (the shapes, the step costs) may run on several threads: its OpenMP pool is not
    # copied by a fork, and a fork's first multi-threaded operation then hangs. A suite's data-set reports evaluate
    # activations in the workers.
    import torch

    torch.set_num_threads(2)
    x = torch.ones(600, 600, dtype=torch.float64)
    assert float((x @ x).sum()) == 600**3
    torch.ones(4_000_000, dtype=torch.float64).exp().sum()
    assert map_in_processes(_torch_sum, range(4), workers=2) == [1.0, 2.0, 3.0, 4.0]


def _case_a_helper_killed_before_the_call_is_an_error_not_a_hang(tmp_path):
    import signal
    import time
    from concurrent.futures.process import BrokenProcessPool

    from learnact.reporting import parallel

    assert parallel.warm_up()
    assert parallel._HELPER is not None and parallel._HELPER._pid is not None
    os.kill(parallel._HELPER._pid, signal.SIGKILL)
    time.sleep(0.2)
    with pytest.raises(BrokenProcessPool, match="ended abruptly"):
        map_in_processes(abs, [-1, -2], workers=2)
    assert map_in_processes(abs, [-3, -4], workers=2) == [3, 4]


@_helper_only
@pytest.mark.parametrize("case", [name for name in dir(sys.modules[__name__]) if name.startswith("_case_")])
def test_the_helper_path(case, tmp_path):
    """Each ``_case_*`` in a fresh interpreter: this one may run threads an earlier test left (a helper is forked
    only where none runs), and the cases count this process's children."""
    run_case(__file__, case, str(tmp_path), timeout=120)
