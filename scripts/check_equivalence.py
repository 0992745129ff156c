"""Check the vectorised engine (reference mode) against the sequential reference trainer.

For every run of a study (default: the paper's 75 runs) both engines train
from the same seed; the check demands, run by run, the same stopping epoch
(``epochs_run`` and ``best_epoch``), the same test accuracy, F1 and ROC-AUC,
and validation losses equal within ``--tol`` at every epoch. It also counts
runs whose whole history and final weights are bit-identical.

Usage::

    python scripts/check_equivalence.py                 # the paper's study, 75 runs
    python scripts/check_equivalence.py --study my.toml --tol 1e-5 --threads 1

Exit status 0 when every run is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from learnact.experiment import ENGINES, build_artifacts, load_study, prepare_splits

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="paper", help="preset name or study file (default: paper)")
    parser.add_argument("--tol", type=float, default=1e-5, help="validation-loss tolerance (default: 1e-5)")
    parser.add_argument("--threads", type=int, default=1,
                        help="PyTorch threads for the sequential run and vectorised workers (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = load_study(args.study).runs()
    splits = prepare_splits(runs)
    t0 = time.perf_counter()
    seq = {t.run.run_id: build_artifacts(t) for t in ENGINES["sequential"](runs, splits)}
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    vec = {t.run.run_id: build_artifacts(t) for t in ENGINES["vectorized"](runs, splits)}
    t_vec = time.perf_counter() - t0
    same = bitwise = 0
    for run in runs:
        a, b = seq[run.run_id], vec[run.run_id]
        problems = [f"{k}: {a.metrics[k]} vs {b.metrics[k]}"
                    for k in ("epochs_run", "best_epoch", "accuracy", "f1", "roc_auc") if a.metrics[k] != b.metrics[k]]
        va = [h["val_loss"] for h in a.history]
        vb = [h["val_loss"] for h in b.history]
        worst = max((abs(x - y) for x, y in zip(va, vb, strict=False)), default=0.0)
        if len(va) != len(vb):
            problems.append(f"history length {len(va)} vs {len(vb)}")
        if worst > args.tol:
            problems.append(f"max |val loss difference| {worst:.3g} > {args.tol:g}")
        if problems:
            print(f"DIFFERENT {run.run_id}: " + "; ".join(problems))
            continue
        same += 1
        if a.history == b.history and all(torch.equal(a.state[k], b.state[k]) for k in a.state):
            bitwise += 1
    n = len(runs)
    print(f"{same}/{n} identical (stopping epoch, best epoch, test accuracy/F1/AUC, val losses within {args.tol:g}); "
          f"{bitwise}/{n} bit-identical (whole history and weights)")
    print(f"sequential {t_seq:.1f} s, vectorized {t_vec:.1f} s ({args.threads} thread(s))")
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
