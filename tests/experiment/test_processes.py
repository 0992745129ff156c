"""Worker processes end with `learnact run`, never hold its study lock, and print no tracebacks (issue 11).

Before: after ``kill -9`` or ``SIGTERM`` of ``learnact run``, the vectorised
engine's forked workers trained on for the rest of their stack, holding the
study lock they inherited by ``fork``, so a rerun started right away was
refused ("in use by pid <the dead parent>"); then they printed
``BrokenPipeError`` tracebacks trying to send their results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import learnact
from learnact.experiment.lock import study_lock
from subprocesses import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; signals are POSIX")

SRC = str(Path(learnact.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}

# three tasks of 4 runs (--group-size 4): short, long (seconds: killed in it), short
STUDY = {
    "name": "orphans",
    "seeds": [1, 2, 3, 4],
    "backbone": {"hidden": [8]},
    "train": {"max_epochs": 5, "patience": 5},
    "variants": [
        {"name": "short_relu", "kind": "fixed", "activation": "relu"},
        {"name": "long_gated", "max_epochs": 1500, "patience": 1500},
        {"name": "short_tanh", "kind": "fixed", "activation": "tanh"},
    ],
}
GROUP = 4


def _command(config: Path, folder: Path) -> list[str]:
    # the vectorised engine with 2 threads forks 2 workers, and a stack forks helpers (worksharing)
    return [sys.executable, "-m", "learnact", "run", "--config", str(config), "--out", str(folder), "--quiet",
            "--no-report", "--engine", "vectorized", "--threads", "2", "--group-size", str(GROUP)]


def _default_sigint() -> None:
    # a test runner's worker may ignore SIGINT (an earlier test in it can leave it so), and a child started with
    # SIGINT ignored keeps ignoring it: give `learnact run` the terminal's default, which Ctrl-C relies on
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _n_done(folder: Path) -> int:
    return len(list((folder / "runs").glob("*/DONE"))) if (folder / "runs").is_dir() else 0


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, ppid)`` of a live process, ``None`` once it has ended (a zombie has ended: it holds nothing)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return None if state in ("Z", "X") else (state, int(ppid))


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[1], []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _numbers(folder: Path) -> pd.DataFrame:
    """leaderboard.csv without the columns that measure this machine (times, latency, memory)."""
    from learnact.evaluation.quantities import MACHINE_QUANTITIES

    table = pd.read_csv(folder / "leaderboard.csv")
    machine = [c for c in table if c.startswith("time_") or c.startswith(MACHINE_QUANTITIES)]
    return table.drop(columns=machine).sort_values("variant").reset_index(drop=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("uninterrupted")
    config = root / "study.json"
    config.write_text(json.dumps(STUDY))
    done = subprocess.run(_command(config, root / "study"), capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    return _numbers(root / "study")


@pytest.mark.parametrize("sig", [
    pytest.param(signal.SIGKILL, id="kill-9"),
    pytest.param(signal.SIGTERM, id="sigterm"),
    # Ctrl-C's exit status and resume message: also tests/cli/test_entry.py; the rerun right after: kill-9 and sigterm
    pytest.param(signal.SIGINT, id="ctrl-c", marks=pytest.mark.slow),
])
def test_a_rerun_right_after_the_kill_is_not_refused_and_matches_an_uninterrupted_study(tmp_path, sig, uninterrupted):
    """kill -9 / SIGTERM go to `learnact run` alone; Ctrl-C (SIGINT) to its whole process group, as a terminal does."""
    config = tmp_path / "study.json"
    config.write_text(json.dumps(STUDY))
    folder = tmp_path / "study"
    command = _command(config, folder)
    stderr_path = tmp_path / "killed.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=ENV, start_new_session=True,
                                preexec_fn=_default_sigint)
    try:
        wait_until(lambda: _n_done(folder) >= GROUP, "the first task's runs were written", proc)
        # the long task has started: the parent forked its workers
        wait_until(lambda: len(_descendants(proc.pid)) >= 1, "workers were forked", proc)
        workers = _descendants(proc.pid)
        assert _n_done(folder) < len(STUDY["seeds"]) * len(STUDY["variants"])
    finally:
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        proc.wait(timeout=120)
    with study_lock(folder):  # what a rerun does first, at once (before: held by the orphaned workers)
        pass
    rerun = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)

    assert rerun.returncode == 0, rerun.stderr  # before: "... is in use by another learnact process (pid ...)"
    assert "in use" not in rerun.stderr and "Traceback" not in rerun.stderr
    pd.testing.assert_frame_equal(_numbers(folder), uninterrupted)
    # the killed run's workers ended with it (they write their output to its stderr, read below)
    wait_until(lambda: not any(_stat(pid) for pid in workers), "the killed run's workers to end", limit_s=120)
    # before: a BrokenPipeError (kill -9, SIGTERM) or KeyboardInterrupt (Ctrl-C) traceback from each worker
    assert "Traceback" not in stderr_path.read_text()
    expected = {signal.SIGKILL: (-signal.SIGKILL,), signal.SIGTERM: (143, -signal.SIGTERM), signal.SIGINT: (130,)}
    assert proc.returncode in expected[sig]


# A process takes the study lock, starts a forked worker (the way the vectorised engine does) that
# outlives it unless told otherwise, and waits to be killed. The worker reports its own pid once it runs
# Python code, so after the fork handlers (reported by the parent, a loaded machine could let the test
# kill the parent before the child had been scheduled at all).
FORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from learnact.experiment.lock import study_lock
    with study_lock(Path(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            print(os.getpid(), flush=True)
            time.sleep(120)
            os._exit(0)
        time.sleep(600)
""")


def test_a_forked_child_does_not_keep_the_study_locked_after_its_parent_dies(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", FORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env=ENV)
    child = int(proc.stdout.readline())
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert _stat(child) is not None  # a plain fork (no become_worker) lives on ...
        with study_lock(tmp_path):  # ... and holds nothing: before, "in use by another learnact process"
            pass
    finally:
        os.kill(child, signal.SIGKILL)


# A middle process starts a worker that calls become_worker(<the middle process or the test process>)
# and sleeps; the middle process is then killed. MODE "direct": the worker's own parent (parent-death
# signal); "watch": a process that is not its parent (the watch thread, as for a fork server's workers).
WORKER_CHAIN = textwrap.dedent("""
    import os, sys, time
    from learnact._processes import become_worker
    mode = sys.argv[1]
    middle = os.getpid()
    pid = os.fork()
    if pid == 0:
        if mode == "watch":
            if os.fork():  # the worker's parent is this intermediate process, which stays alive
                time.sleep(600)
                os._exit(0)
        become_worker(middle)
        print(os.getpid(), os.getppid(), flush=True)
        time.sleep(600)
        os._exit(0)
    time.sleep(600)
""")


@pytest.mark.parametrize("mode", ["direct", "watch"])
def test_a_worker_ends_when_the_process_it_works_for_is_killed(mode):
    proc = subprocess.Popen([sys.executable, "-c", WORKER_CHAIN, mode], stdout=subprocess.PIPE, text=True, env=ENV)
    worker, parent = (int(x) for x in proc.stdout.readline().split())
    others = _descendants(proc.pid) - {worker}
    try:
        assert _stat(worker) is not None
        assert (parent == proc.pid) == (mode == "direct")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        wait_until(lambda: _stat(worker) is None, "the worker to end", limit_s=60)
    finally:
        for pid in [worker, *others]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_become_worker_silences_sigterm_sigint_and_sigpipe():
    script = textwrap.dedent("""
        import os, signal
        from learnact._processes import become_worker
        signal.signal(signal.SIGTERM, lambda *a: print("handler ran"))  # a parent's handler, inherited by fork
        become_worker(os.getppid())
        print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
              signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL)
        r, w = os.pipe()
        os.close(r)
        os.write(w, b"x")  # the parent is gone: the worker ends quietly (SIGPIPE), no BrokenPipeError
        print("not reached")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.stdout.split() == ["True", "True", "True"]
    assert done.returncode == -signal.SIGPIPE and done.stderr == ""


# A process pool (`--executor processes`) whose workers are busy; the pool's owner is then killed.
POOL_OWNER = textwrap.dedent("""
    import time
    from learnact.experiment.executors import open_executor

    with open_executor("processes", workers=2) as pool:
        for _ in range(2):
            pool.executor.submit(time.sleep, 600)
        print("started", flush=True)
        time.sleep(600)
""")


def test_process_pool_workers_end_with_the_process_that_owns_the_pool():
    """Their parent is a fork server, which outlived a killed owner while its workers held it open: all leaked."""
    proc = subprocess.Popen([sys.executable, "-c", POOL_OWNER], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "started"
    wait_until(lambda: len(_descendants(proc.pid)) >= 3, "the fork server and 2 workers", proc, limit_s=120)
    started = _descendants(proc.pid)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        wait_until(lambda: not any(_stat(pid) for pid in started), "the pool's processes to end", limit_s=60)
    finally:
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_pool_worker_watching_its_owner_may_still_fork_stacks(tmp_path):
    """The watch thread holds no lock: the vectorised engine inside a pool worker still forks its workers."""
    (tmp_path / "probe.py").write_text(textwrap.dedent("""
        import threading
        def probe():
            from learnact._processes import can_fork
            return can_fork(True), sorted(t.name for t in threading.enumerate())
    """))
    script = textwrap.dedent("""
        from learnact.experiment.executors import open_executor
        from probe import probe
        with open_executor("processes", workers=1) as pool:
            print(pool.executor.submit(probe).result())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**ENV, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path}"})
    assert done.stdout.strip() == "(True, ['MainThread', 'learnact-parent-watch'])", done.stderr
