"""fork_map: post-training bookkeeping spread over forked workers, in order, errors raised as in one process.

Forking needs a single-threaded process, which a pytest-xdist worker need not
be, so the cases that must fork run in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from learnact._processes import can_fork, fork_map

SRC = Path(__file__).resolve().parents[2] / "src"


def _fresh(code: str, tmp_path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_results_come_back_in_order_from_two_forked_workers(tmp_path):
    out = _fresh("""
        import json, os
        from learnact._processes import fork_map
        items = list(range(50))
        got = list(fork_map(lambda x: (os.getpid(), x * x), items, 2, min_per_worker=5))
        pids = sorted({p for p, _ in got})
        print(json.dumps({"values": [v for _, v in got], "n_pids": len(pids), "here": os.getpid() in pids}))
    """, tmp_path)
    # forked workers did the work (on a busy machine one of the two may take every range)
    assert out["values"] == [x * x for x in range(50)] and out["here"] is False and out["n_pids"] in (1, 2)


def test_a_worker_error_is_raised_in_the_caller_with_its_type(tmp_path):
    out = _fresh("""
        import json
        from learnact._processes import fork_map
        from learnact.exceptions import RunStoreError

        class Unsendable(Exception):
            def __reduce__(self):
                raise TypeError("cannot pickle this error")

        def boom(x):
            if x == 33:
                raise RunStoreError(f"disk full writing run {x}")
            return x

        def unsendable(x):
            if x == 7:
                raise Unsendable(f"item {x} failed")
            return x

        caught = []
        for fn in (boom, unsendable):
            try:
                list(fork_map(fn, list(range(60)), 2, min_per_worker=4))
            except Exception as exc:
                caught.append([type(exc).__name__, str(exc)])
        print(json.dumps(caught))
    """, tmp_path)
    # a picklable error crosses back as it was raised; one that cannot be pickled is raised by rerunning that
    # worker's share here
    assert out == [["RunStoreError", "disk full writing run 33"], ["Unsendable", "item 7 failed"]]


def test_everything_runs_here_when_few_items_one_worker_or_another_thread():
    here = {os.getpid()}
    assert {p for p, _ in fork_map(lambda x: (os.getpid(), x), list(range(10)), 2, min_per_worker=16)} == here
    assert {p for p, _ in fork_map(lambda x: (os.getpid(), x), list(range(100)), 1, min_per_worker=1)} == here
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork(True)  # a fork now could copy a lock that thread holds
        got = list(fork_map(lambda x: (os.getpid(), x), list(range(40)), 2, min_per_worker=2))
    finally:
        stop.set()
        other.join()
    assert {p for p, _ in got} == here and [x for _, x in got] == list(range(40))


def test_a_large_study_is_written_and_read_by_forked_workers_alike(tmp_path):
    # the store's run folders written by two workers, then the tidy table read by two workers: the same
    # files (byte for byte, by manifest) and the same table as one process gives
    out = _fresh(f"""
        import json, hashlib
        from pathlib import Path
        import learnact._processes as P
        from learnact import store
        from learnact.experiment import load_study
        from learnact.experiment.engines import train_group
        from learnact.evaluation import tidy_results
        study = load_study("paper")
        runs = [r for r in study.runs() if r.seed in (1, 7)][:12]
        arts = train_group("vectorized", runs)
        digests = {{}}
        for label, least in (("serial", 10_000), ("forked", 2)):
            P.MIN_PER_WORKER = least
            folder = Path({str(tmp_path)!r}) / label
            written = list(store.write_runs(folder, arts, workers=2))
            assert [w.name for w in written] == [a.run.run_id for a in arts]
            digests[label] = {{w.name: hashlib.sha256(b"".join((w / n).read_bytes() for n in sorted(
                f.name for f in w.iterdir()) if n != "MANIFEST.json" and n != "DONE")).hexdigest()
                for w in written}}
            digests[label + "_tidy"] = tidy_results(folder).to_json()
        print(json.dumps({{"files": digests["serial"] == digests["forked"],
                          "tidy": digests["serial_tidy"] == digests["forked_tidy"], "n": len(arts)}}))
    """, tmp_path)
    assert out == {"files": True, "tidy": True, "n": 12}
