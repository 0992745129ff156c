"""Speed and memory of the training engines, measured in one invocation.

1. The paper's full sweep (15 variants x 5 seeds = 75 runs) with the
   sequential reference trainer and with the vectorised engine (reference
   mode): wall time of each, their ratio, member-epochs, peak memory.
2. A scaling run: the same sweep with 67 seeds (0..66), 1,005 members, with
   the vectorised engine: wall time, member-epochs, peak memory.

Each measurement runs in a fresh Python subprocess, timed undisturbed. Peak
memory: the sequential engine's is its process's largest RSS; the vectorised
engine forks worker processes that share pages, so its figure is the largest
proportional set size (PSS) of the subprocess plus its workers and helpers
(shared pages split between the processes sharing them; imports included),
sampled every 50 ms from the benchmark process in a *second*, untimed run of
the same training: reading ``smaps_rollup`` walks the page tables of the
processes it reads and slowed the timed run by 10-25% when done during it.
The sequential engine runs on one intra-op thread (its fastest setting on
small models); the vectorised engine gets the core count as its worker budget
(``--threads``), each worker a process with one intra-op thread.

Usage::

    python benchmarks/bench_engines.py                  # all three measurements
    python benchmarks/bench_engines.py --skip scaling   # or: --skip sequential
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

__all__ = ["main", "measure", "measure_with_memory"]

_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import torch
    from learnact.experiment import ENGINES, load_study, prepare_splits
    engine, threads, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(threads)
    study = load_study("paper")
    if seeds != "paper":
        lo, hi = map(int, seeds.split(".."))
        study = study.model_copy(update={"seeds": tuple(range(lo, hi + 1))})
    runs = study.runs()
    splits = prepare_splits(runs)
    start = time.perf_counter()
    epochs = sum(t.fit.epochs_run for t in ENGINES[engine](runs, splits))
    wall = time.perf_counter() - start
    rss = [resource.getrusage(who).ru_maxrss / 1024.0 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    from learnact.training import native
    print(json.dumps({"engine": engine, "runs": len(runs), "member_epochs": epochs, "wall_s": wall,
                      "peak_rss_self_mb": rss[0], "peak_rss_worker_mb": rss[1], "native": native.available()}))
""")


def process_tree(root: int) -> list[int]:
    """Process ``root`` and all its descendants now (Linux ``/proc/PID/task/TID/children``); those gone are left
    out of the walk."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return pids


def _tree_pss_mb(root: int) -> float:
    """Proportional set size (MiB) of process ``root`` and all its descendants; shared pages split fairly."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                total += sum(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
        except OSError:
            pass
    return total / 1024.0


def measure(engine: str, threads: int, seeds: str = "paper", sample_memory: bool = False) -> dict:
    """Train the paper sweep (``seeds``: ``"paper"`` or ``"lo..hi"``) in a fresh child; its figures.

    With ``sample_memory``, the child's process tree is sampled every 50 ms
    from here for its peak PSS (which slows the child: do not time that run).
    """
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, engine, str(threads), seeds],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    if sample_memory:
        while proc.poll() is None:
            peak = max(peak, _tree_pss_mb(proc.pid))
            time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"benchmark child failed ({engine}, seeds {seeds}):\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_pss_mb"] = peak
    return result


def measure_with_memory(engine: str, threads: int, seeds: str = "paper") -> dict:
    """:func:`measure` timed undisturbed, plus the peak PSS of a second, sampled run."""
    timed = measure(engine, threads, seeds)
    timed["peak_pss_mb"] = measure(engine, threads, seeds, sample_memory=True)["peak_pss_mb"]
    return timed


def _line(label: str, m: dict) -> str:
    if m["peak_pss_mb"]:
        memory = (f"peak memory {m['peak_pss_mb']:5.0f} MiB (PSS of the process tree, sampled run; max RSS: "
                  f"main {m['peak_rss_self_mb']:.0f}, largest worker {m['peak_rss_worker_mb']:.0f})")
    else:
        memory = f"peak memory {m['peak_rss_self_mb']:5.0f} MiB (max RSS of the process)"
    return (f"{label:<32} {m['wall_s']:7.2f} s  {m['runs']:5d} runs  {m['member_epochs']:6d} member-epochs  "
            + memory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count() or 1
    parser.add_argument("--threads", type=int, default=cores,
                        help=f"worker budget of the vectorised engine (default: {cores})")
    parser.add_argument("--skip", choices=["sequential", "scaling"], action="append", default=[],
                        help="leave out a measurement (repeatable)")
    args = parser.parse_args(argv)
    print(f"learnact engine benchmark: {cores} cores; vectorised workers {args.threads}, sequential 1 thread")
    vec = measure_with_memory("vectorized", args.threads)
    if "sequential" not in args.skip:
        seq = measure("sequential", 1)
        print(_line("paper sweep, sequential", seq))
    print(_line("paper sweep, vectorized", vec))
    print(f"  stacked step: {'native (C++)' if vec.get('native') else 'Python (native step unavailable or off)'}")
    if "sequential" not in args.skip:
        print(f"speed-up (sequential / vectorized wall time): {seq['wall_s'] / vec['wall_s']:.1f}x")
    if "scaling" not in args.skip:
        big = measure_with_memory("vectorized", args.threads, "0..66")
        print(_line("67 seeds (0..66), vectorized", big))
        print(f"  {big['member_epochs'] / big['wall_s']:.0f} member-epochs/s (targets: < 60 s, < 1024 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
