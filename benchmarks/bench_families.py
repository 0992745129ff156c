"""The ``families`` preset with the sequential and the vectorised engine, in one invocation.

The preset (``learnact list presets``) puts every registered learnable family
beside the fixed baselines relu, tanh, gelu and silu and the paper's two
headline gated mixtures, five seeds each, under the paper's protocol. Both
engines train all of its runs, each in a fresh Python subprocess timed
undisturbed (the same child as ``bench_engines.py``): the sequential engine on
one intra-op thread (its fastest setting on these small models), the
vectorised engine (reference mode) with the core count as its worker budget.
Printed: both wall times, their ratio, member-epochs, which stacked step the
stacks used (the native step's C++, or the Python step for a stack with a
family layer whose pass the C++ does not repeat), and per family the strategy
its stacked segments use and whether it is bit-identical to the reference
(:mod:`learnact.training.family_segments`).

Usage::

    python benchmarks/bench_families.py               # both engines
    python benchmarks/bench_families.py --threads 2   # worker budget of the vectorised engine
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
    import json, sys, time
    import torch
    from learnact.experiment import ENGINES, load_study, prepare_splits
    engine, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    study = load_study("families")
    runs = study.runs()
    splits = prepare_splits(runs)
    start = time.perf_counter()
    per_kind = {}
    for t in ENGINES[engine](runs, splits):
        kind = t.run.activation.kind
        per_kind[kind] = per_kind.get(kind, 0) + t.fit.epochs_run
    wall = time.perf_counter() - start
    from learnact.training import native
    print(json.dumps({"engine": engine, "runs": len(runs), "variants": len(study.variants),
                      "member_epochs": sum(per_kind.values()), "per_kind": per_kind, "wall_s": wall,
                      "native": native.available()}))
""")

_STRATEGIES = textwrap.dedent("""
    import json
    from learnact.config import ActivationConfig
    from learnact.model import build_activation
    from learnact.model.activations.families import list_families
    from learnact.training import native
    from learnact.training.family_segments import choose, in_native_step
    loaded = native.load()  # as the vectorised engine does before it chooses: a family's native pass needs the library
    out = {}
    for kind in list_families():
        modules = [(build_activation(ActivationConfig(kind=kind), width, 30), width) for width in (64, 32)]
        out[kind] = [(c.strategy, c.exact, loaded and in_native_step(m, w)) for m, w in modules for c in [choose(m, w)]]
    print(json.dumps(out))
""")


def measure(engine: str, threads: int) -> dict:
    """Train the families preset with ``engine`` in a fresh child process; its figures."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, engine, str(threads)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"benchmark child failed ({engine}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def strategies() -> dict[str, list]:
    """Per family, ``(strategy, exact, in the native step)`` of its stacked segment in each hidden layer of the
    preset's backbone."""
    proc = subprocess.run([sys.executable, "-c", _STRATEGIES], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count() or 1
    parser.add_argument("--threads", type=int, default=cores,
                        help=f"worker budget of the vectorised engine (default: {cores})")
    args = parser.parse_args(argv)
    print(f"learnact families benchmark: {cores} cores; vectorised workers {args.threads}, sequential 1 thread")
    chosen = strategies()
    for kind, layers in chosen.items():
        text = ", ".join(f"{s} ({'bit-identical' if exact else 'to rounding'})" for s, exact, _ in layers)
        print(f"  {kind:<9} stacked segment: {text}")
    vec = measure("vectorized", args.threads)
    seq = measure("sequential", 1)
    for label, m in (("sequential", seq), ("vectorized", vec)):
        print(f"families preset, {label:<11} {m['wall_s']:7.2f} s  {m['runs']:4d} runs ({m['variants']} variants)  "
              f"{m['member_epochs']:6d} member-epochs")
    if not vec.get("native"):
        print("  stacked step: Python (native step unavailable or off)")
    else:
        python = [kind for kind, layers in chosen.items() if not all(native for *_, native in layers)]
        print("  stacked step: native (C++) for the fixed and gated stacks and "
              + (f"the family stacks but those with {', '.join(python)} (Python)" if python else "every family stack"))
    if seq["member_epochs"] != vec["member_epochs"]:
        print(f"  note: member-epochs differ ({seq['member_epochs']} vs {vec['member_epochs']}): a run stopped at "
              "another epoch")
    print(f"speed-up (sequential / vectorized wall time): {seq['wall_s'] / vec['wall_s']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
