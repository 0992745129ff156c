"""``learnact run --preset suite`` end to end, as a user runs it: wall time to the summary and to the report.

The ``suite`` preset (``learnact list presets``) trains 9 variants x 9 data
sets x 5 seeds (405 runs) and builds the suite report with a full report per
data set. This script runs the real console script in a fresh folder, reads
the time at which the suite summary appeared on stdout and the total wall
time, and checks what the report must hold (the critical-difference diagram,
the probability-of-improvement matrix, a section per data set). The target is
under 10 minutes on 2 cores.

Usage::

    python benchmarks/bench_suite.py              # a temporary folder, removed afterwards
    python benchmarks/bench_suite.py --keep DIR   # keep the study folder (report in DIR/report)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["main"]

BUDGET_S = 600.0


def _command() -> list[str]:
    script = Path(sys.executable).with_name("learnact")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "learnact"]


def run_suite(folder: Path) -> dict[str, float]:
    """Run the preset into ``folder``; seconds to the summary table and to the end."""
    start = time.perf_counter()
    proc = subprocess.Popen([*_command(), "run", "--preset", "suite", "--out", str(folder), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[str, float] = {}
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "avg rank" in line and "summary_s" not in seen:
                seen["summary_s"] = time.perf_counter() - start

    reader = threading.Thread(target=read)
    reader.start()
    _, err = proc.communicate()
    reader.join()
    total = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"learnact run --preset suite failed (exit {proc.returncode}):\n{err}")
    sys.stdout.write("".join(lines))
    return {"summary_s": seen.get("summary_s", float("nan")), "total_s": total}


def check_report(folder: Path) -> list[str]:
    """What the suite report must hold that is missing (empty: all there)."""
    report = folder / "report"
    missing = [f"figures/{f}.png" for f in ("cd_diagram", "probability_of_improvement")
               if not (report / "figures" / f"{f}.png").is_file()]
    index = (report / "index.md").read_text(encoding="utf-8") if (report / "index.md").is_file() else ""
    if "Critical-difference diagram" not in index or "Probability of improvement" not in index:
        missing.append("index.md: CD diagram or probability-of-improvement section")
    from learnact.experiment import load_study

    for data in load_study("suite").datasets:
        label = Path(data.dataset).stem
        if not (report / label / "index.md").is_file():
            missing.append(f"{label}/index.md")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="study folder to keep (must not exist)")
    args = parser.parse_args(argv)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count() or 1
    tmp = None
    if args.keep is None:
        tmp = Path(tempfile.mkdtemp(prefix="learnact-bench-suite-"))
        folder = tmp / "suite"
    else:
        folder = args.keep
    try:
        times = run_suite(folder)
        missing = check_report(folder)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"learnact suite benchmark: {cores} cores")
    print(f"  suite summary printed after {times['summary_s']:7.1f} s")
    print(f"  finished report after       {times['total_s']:7.1f} s  ({times['total_s'] / 60:.1f} min; budget "
          f"{BUDGET_S / 60:.0f} min: {times['total_s'] / BUDGET_S:.2f} of it)")
    print(f"  report: {'complete' if not missing else 'MISSING ' + ', '.join(missing)}")
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
