"""Speed and memory of the training engines, measured in one invocation.

1. The paper's full sweep (15 variants x 5 seeds = 75 runs) with the
   sequential reference trainer and with the vectorised engine (reference
   mode): wall time of each, their ratio, member-epochs, peak memory.
2. A scaling run: the same sweep with 67 seeds (0..66), 1,005 members, with
   the vectorised engine: wall time, member-epochs, peak memory.

Each measurement runs in a fresh Python subprocess, so its peak resident
memory (``ru_maxrss`` of that child, imports included) is its own. Both
engines get the same PyTorch thread budget (``--threads``, default: all
cores); the sequential engine uses it as intra-op threads, the vectorised
engine as worker threads of one intra-op thread each.

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

__all__ = ["main", "measure"]

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
    cpu = time.process_time()
    epochs = sum(t.fit.epochs_run for t in ENGINES[engine](runs, splits))
    wall = time.perf_counter() - start
    print(json.dumps({"engine": engine, "runs": len(runs), "member_epochs": epochs, "wall_s": wall,
                      "cpu_s": time.process_time() - cpu,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
""")


def measure(engine: str, threads: int, seeds: str = "paper") -> dict:
    """Train the paper sweep (``seeds``: ``"paper"`` or ``"lo..hi"``) in a fresh child; its figures."""
    out = subprocess.run([sys.executable, "-c", _CHILD, engine, str(threads), seeds],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _line(label: str, m: dict) -> str:
    return (f"{label:<34} {m['wall_s']:8.2f} s wall  {m['cpu_s']:8.2f} s cpu  {m['runs']:5d} runs  "
            f"{m['member_epochs']:7d} member-epochs  peak {m['peak_mb']:7.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count() or 1
    parser.add_argument("--threads", type=int, default=cores, help=f"thread budget per engine (default: {cores})")
    parser.add_argument("--skip", choices=["sequential", "scaling"], action="append", default=[],
                        help="leave out a measurement (repeatable)")
    args = parser.parse_args(argv)
    print(f"learnact engine benchmark: {cores} cores, thread budget {args.threads}")
    vec = measure("vectorized", args.threads)
    if "sequential" not in args.skip:
        seq = measure("sequential", args.threads)
        print(_line("paper sweep, sequential", seq))
    print(_line("paper sweep, vectorized", vec))
    if "sequential" not in args.skip:
        print(f"speed-up (sequential / vectorized wall time): {seq['wall_s'] / vec['wall_s']:.1f}x")
    if "scaling" not in args.skip:
        big = measure("vectorized", args.threads, "0..66")
        print(_line("67 seeds (0..66), vectorized", big))
        print(f"  {big['member_epochs'] / big['wall_s']:.0f} member-epochs/s; targets: < 60 s, < 1024 MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
