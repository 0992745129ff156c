"""What a user waits for, end to end, measured in one invocation.

1. The sequential engine's training of the paper sweep (75 runs), in a fresh
   process on one thread (``bench_engines.measure``): the yardstick.
2. ``learnact run`` of the paper study into a new folder, with the report
   pack (PNG and PDF figures, tables, report.tex): seconds until the
   leaderboard is on the terminal (the ``study folder:`` line after it) and
   until the command exits with the whole pack written. Three times, each
   into a new folder: the ratios take the median run (a single run of a few
   seconds on a shared machine is a noisy sample; each is printed).
   The same command again with its output on a pseudo-terminal, as a user
   in a terminal meets it (the progress bar and a line per figure).
   Once more with its processes' CPU time sampled (:func:`cpu_by_process`):
   how many CPU-seconds the job is, and so the shortest it can take on this
   machine's cores; and its schedule, when each process used CPU, to show
   where cores sat idle.
3. ``learnact report`` alone on that folder.
4. ``learnact list`` (median of three).
5. The paper sweep over 67 seeds (1,005 runs): the vectorised engine's
   training alone (fresh process, ``bench_engines.measure``), ``learnact run
   --no-report`` of the same study, and ``learnact report`` of its folder,
   with the report's peak memory (the largest resident set of the command's
   process tree, from ``wait4``'s rusage).

Every command is the installed console script next to this Python, each in a
fresh process, one after another, so timings include imports as a user
meets them. Printed: each figure and the ratios the speed issue asks about.

Usage::

    python benchmarks/bench_end_to_end.py
    python benchmarks/bench_end_to_end.py --skip big      # without the 1,005-run study
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engines import measure, process_tree  # noqa: E402  (the sibling benchmark's trainer, /proc walk)

__all__ = ["ProcessCPU", "cpu_by_process", "main", "timed_command", "timed_on_terminal"]

LEARNACT = [str(Path(sys.executable).with_name("learnact"))]

REPORT_PROCESS = "learnact-report"
"""The name (``/proc/PID/comm``) a report helper forked from the command gives itself and its workers
(``learnact.reporting.parallel.PROCESS_NAME``; a test holds the two equal)."""


def timed_command(args: list[str], cwd: Path, mark: str | None = None) -> dict:
    """Run ``learnact ARGS`` in ``cwd``; wall time, time until a stdout line starts with ``mark``, peak RSS (MiB).

    Raises:
        RuntimeError: The command failed (its stderr is in the message).
    """
    env = {**os.environ, "MPLBACKEND": "Agg"}
    errors = tempfile.TemporaryFile(mode="w+")  # progress lines go to stderr: a file, so no pipe fills up
    start = time.perf_counter()
    proc = subprocess.Popen([*LEARNACT, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=errors, text=True,
                            env=env)
    marked = None
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if mark is not None and marked is None and line.startswith(mark):
            marked = time.perf_counter() - start
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    errors.seek(0)
    err = errors.read()
    errors.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"learnact {' '.join(args)} exited {proc.returncode}:\n{err[-2000:]}")
    return {"wall_s": wall, "mark_s": marked, "peak_rss_mb": usage.ru_maxrss / 1024.0, "stdout": "".join(lines)}


def timed_on_terminal(args: list[str], cwd: Path, mark: str) -> dict:
    """Run ``learnact ARGS`` in ``cwd`` with its output on a pseudo-terminal, as a user in a terminal sees it (the
    progress bar, a line per figure); wall time and time until an output line starts with ``mark``.

    Raises:
        RuntimeError: The command failed (the end of its output is in the message).
    """
    import pty
    import re

    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "160"}
    master, slave = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen([*LEARNACT, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=env)
    os.close(slave)
    marked, pending, tail = None, b"", b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        tail = (tail + chunk)[-4000:]
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode(errors="replace")).strip("\r ")
            if marked is None and line.startswith(mark):
                marked = time.perf_counter() - start
    code = proc.wait()
    wall = time.perf_counter() - start
    os.close(master)
    if code != 0:
        raise RuntimeError(f"learnact {' '.join(args)} exited {code} on a terminal:\n{tail.decode(errors='replace')}")
    return {"wall_s": wall, "mark_s": marked}


def _cpu_ticks(pid: int) -> int | None:
    """User plus system clock ticks ``pid`` has run (its own, not its children's), or ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True)
class ProcessCPU:
    """One process of a sampled command (:func:`cpu_by_process`): its role, when it used CPU and how much.

    Attributes:
        pid: Its process id.
        role: ``"command"``, ``"forked"``, ``"report"`` or ``"other"``.
        start_s: When it was first seen (seconds after the command started).
        end_s: The last sample at which its CPU time had grown (seconds after the start).
        cpu_s: Its user plus system CPU time (seconds).
    """

    pid: int
    role: str
    start_s: float
    end_s: float
    cpu_s: float


def cpu_by_process(args: list[str], cwd: Path, every_s: float = 0.01) -> dict[str, Any] | None:
    """Run ``learnact ARGS`` in ``cwd`` and sample its process tree's CPU time (Linux ``/proc``); ``None`` elsewhere.

    Every ``every_s`` seconds the tree is walked from the command's process
    (``bench_engines.process_tree``) and each process's own user plus system
    time read; a process keeps its last reading once it ends, so up to
    ``every_s`` of each process's final CPU time is missed. A process counts
    as the program it runs last: a fork that execs another program (as
    multiprocessing starts its fork server) is that program's. Returned, in
    CPU-seconds: ``"command"`` (the process started), ``"forked"`` (its forks
    running the same program: the data helper, the training workers),
    ``"report"`` (the report's helper, a fork named :data:`REPORT_PROCESS`, or
    its fork server, and the workers either forks), ``"other"``
    (multiprocessing's resource tracker and the like), ``"total"`` and
    ``"wall_s"``; and ``"processes"``, the schedule: a :class:`ProcessCPU` per
    process, in the order they were first seen, each with the span of its CPU
    use (first seen to the last sample its CPU time grew), to tell where cores
    sat idle.
    """
    if not os.path.isdir("/proc/self/task"):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    proc = subprocess.Popen([*LEARNACT, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    ticks: dict[int, int] = {}
    lines: dict[int, str] = {}
    names: dict[int, str] = {}  # /proc/PID/comm
    span: dict[int, list[float]] = {}  # first seen, last grown (seconds from the start)
    while True:
        done = proc.poll() is not None
        tree = process_tree(proc.pid) if not done else []  # the command first: its line is read before its forks'
        # each process of the tree as it is now, and those that left it (re-parented as the command ended) while
        # they still run: one reading each
        for pid in dict.fromkeys([*tree, *ticks]):
            now = _cpu_ticks(pid)
            if now is None:
                continue
            if pid in tree and lines.get(pid, "") in ("", lines.get(proc.pid, "")):
                # a fork still running the command's program may yet exec another (multiprocessing starts its fork
                # server so; read mid-exec, the line is empty): a process counts as the program it runs last. An
                # ended process not yet waited for reads empty too, and keeps the line it had.
                line = _cmdline(pid)
                if line or pid not in lines:
                    lines[pid] = line
            elif pid not in tree and _cmdline(pid) != lines[pid]:
                continue  # its number taken by another program since
            if names.get(pid) != REPORT_PROCESS:  # a report helper names itself once it has started
                names[pid] = _comm(pid)
            at = time.perf_counter() - start
            if pid not in span:
                span[pid] = [at, at]
            elif now > ticks[pid]:
                span[pid][1] = at
            ticks[pid] = max(ticks.get(pid, 0), now)
        if done:
            break
        time.sleep(every_s)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"learnact {' '.join(args)} exited {proc.returncode}")
    out: dict[str, Any] = {"command": 0.0, "forked": 0.0, "report": 0.0, "other": 0.0}
    processes = []
    for pid, n in ticks.items():
        role = ("command" if pid == proc.pid else "report" if names.get(pid) == REPORT_PROCESS
                else "forked" if lines[pid] == lines[proc.pid]
                else "report" if "multiprocessing.forkserver" in lines[pid] else "other")
        out[role] += n / hz
        processes.append(ProcessCPU(pid, role, span[pid][0], span[pid][1], n / hz))
    out["total"] = sum(out.values())
    out["wall_s"] = wall
    out["processes"] = processes
    return out


def _big_study(folder: Path, seeds: int) -> Path:
    """The paper study over seeds ``0 .. seeds - 1``, written as a study file in ``folder``."""
    from learnact.experiment import load_study
    from learnact.experiment.grid import study_to_dict

    study = load_study("paper")
    study = study.model_copy(update={"seeds": tuple(range(seeds)), "name": f"paper_{seeds}_seeds"})
    path = folder / "big.json"
    path.write_text(json.dumps(study_to_dict(study)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", action="append", default=[], choices=["sequential", "big"],
                        help="leave a measurement out")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="vectorised engine workers")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="learnact-e2e-"))
    print(f"learnact end-to-end benchmark: {os.cpu_count()} cores; work folder {work}")
    try:
        seq = None
        if "sequential" not in args.skip:
            seq = measure("sequential", 1, "paper")
            print(f"sequential engine, paper sweep (75 runs), training only   {seq['wall_s']:7.2f} s")
        # three runs, each into a new folder: one run of a few seconds on a shared machine is a noisy sample, and the
        # ratios below take the median of the three (each run is printed)
        runs = [timed_command(["run", "--out", name, "--threads", str(args.threads)], work, mark="study folder:")
                for name in ("paper", "paper_2", "paper_3")]
        run = {key: statistics.median(r[key] for r in runs) for key in ("mark_s", "wall_s")}
        each = ", ".join(f"{r['mark_s']:.2f}" for r in runs)
        print(f"learnact run (paper study, report pack), leaderboard at    {run['mark_s']:7.2f} s  (median; {each})")
        each = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
        print(f"learnact run (paper study, report pack), finished pack     {run['wall_s']:7.2f} s  (median; {each})")
        tty = timed_on_terminal(["run", "--out", "paper_tty", "--threads", str(args.threads)], work,
                                mark="study folder:")
        print(f"  the same on a terminal (progress bar), leaderboard at    {tty['mark_s']:7.2f} s")
        print(f"  the same on a terminal (progress bar), finished pack     {tty['wall_s']:7.2f} s")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        cpu = cpu_by_process(["run", "--out", "paper_cpu", "--threads", str(args.threads)], work)
        if cpu is not None:
            print(f"  the same, its CPU time (sampled): {cpu['total']:5.2f} CPU-s in {cpu['wall_s']:5.2f} s "
                  f"(command {cpu['command']:.2f}, its forks {cpu['forked']:.2f}, report workers "
                  f"{cpu['report']:.2f}, other {cpu['other']:.2f}): at least {cpu['total'] / cores:.2f} s on "
                  f"{cores} cores")
            idle = cores * cpu["wall_s"] - cpu["total"]
            print(f"  its schedule ({idle:.2f} core-s idle of {cores} x {cpu['wall_s']:.2f} s); per process, from "
                  "first seen to its last CPU use:")
            for p in cpu["processes"]:
                if p.cpu_s >= 0.05:
                    print(f"    {p.role:8s} {p.start_s:5.2f}-{p.end_s:5.2f} s  {p.cpu_s:5.2f} CPU-s")
        report = timed_command(["report", "paper"], work)
        print(f"learnact report (paper study) alone                         {report['wall_s']:7.2f} s")
        listing = statistics.median(timed_command(["list"], work)["wall_s"] for _ in range(3))
        print(f"learnact list (median of 3)                                 {listing:7.2f} s")
        big = None
        if "big" not in args.skip:
            study = _big_study(work, 67)
            train = measure("vectorized", args.threads, "0..66")
            print(f"1,005 runs, vectorised engine, training only                {train['wall_s']:7.2f} s")
            norep = timed_command(["run", "--config", str(study), "--out", "big", "--no-report", "--threads",
                                   str(args.threads)], work)
            print(f"1,005 runs, learnact run --no-report                        {norep['wall_s']:7.2f} s")
            big_report = timed_command(["report", "big"], work)
            print(f"1,005 runs, learnact report                                 {big_report['wall_s']:7.2f} s, "
                  f"peak {big_report['peak_rss_mb']:.0f} MiB")
            big = (train, norep, big_report)
        print("ratios (target in brackets):")
        if seq is not None:
            ratio = seq["wall_s"] / run["wall_s"]
            each = ", ".join(f"{seq['wall_s'] / r['wall_s']:.2f}x" for r in runs)
            print(f"  sequential training / learnact run with the pack   {ratio:6.2f}x  (>= 8x; median run; each: "
                  f"{each})")
            if cpu is not None:
                print(f"    at most, with every core busy from start to end   "
                      f"{seq['wall_s'] / (cpu['total'] / cores):6.2f}x  (its CPU time over {cores} cores)")
        print(f"  leaderboard on the terminal after                  {run['mark_s']:6.2f} s  (<= 4 s; median run)")
        print(f"    on a pseudo-terminal, with the progress bar      {tty['mark_s']:6.2f} s  (<= 4 s)")
        print(f"  learnact list                                      {listing:6.2f} s  (< 0.5 s)")
        if big is not None:
            train, norep, big_report = big
            print(f"  1,005-run report                                   {big_report['wall_s']:6.2f} s, "
                  f"{big_report['peak_rss_mb']:.0f} MiB  (< 60 s, < 1024 MiB)")
            print(f"  1,005 runs: run --no-report / training alone       {norep['wall_s'] / train['wall_s']:6.2f}x  "
                  "(<= 1.5x)")
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"(benchmark process itself: peak {self_rss:.0f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
