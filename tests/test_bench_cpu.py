"""The end-to-end benchmark's CPU sampling (``benchmarks/bench_end_to_end.cpu_by_process``) against the kernel's
own account of a command whose processes are all waited for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="the sampling reads Linux's /proc")


BURN = ("import os, sys, time\n"
        "def burn(s):\n"
        "    end = time.process_time() + s\n"
        "    while time.process_time() < end: pass\n")
"""The start of each test command: ``burn(s)`` spends ``s`` seconds of CPU time."""


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_end_to_end

    return bench_end_to_end


def _sampled(bench, monkeypatch, tmp_path, script: str) -> dict:
    """``script`` run as the command (``python -c``), its processes' CPU time sampled every 5 ms."""
    monkeypatch.setattr(bench, "LEARNACT", [sys.executable, "-c", script])
    sampled = bench.cpu_by_process([], tmp_path, every_s=0.005)
    assert sampled is not None
    return sampled


def test_sampled_cpu_time_matches_the_kernels_count(bench, tmp_path, monkeypatch):
    # a child that burns about 0.3 s of CPU in a forked grandchild, waited for: the kernel counts both in the
    # child's rusage; the sampler must find the grandchild in the tree and attribute it to the forks. Each rests
    # before it ends, so a sample reads its final CPU time even on a busy machine.
    script = (BURN + "pid = os.fork()\n"
              "if pid == 0:\n"
              "    burn(0.3); time.sleep(0.3); os._exit(0)\n"
              "burn(0.1); os.waitpid(pid, 0); time.sleep(0.3)\n")
    before = os.times()
    sampled = _sampled(bench, monkeypatch, tmp_path, script)
    after = os.times()
    kernel = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    assert sampled["total"] == pytest.approx(kernel, abs=0.08)  # clock ticks, the last few ms of each
    assert sampled["forked"] == pytest.approx(0.3, abs=0.08)  # the grandchild runs the same program
    assert sampled["command"] == pytest.approx(kernel - sampled["forked"], abs=0.08)
    assert sampled["report"] == 0 and sampled["wall_s"] >= 0.3
    # the schedule: the command from the start, the grandchild while it burned (0.3 s of CPU takes at least 0.3 s)
    by_role = {p.role: p for p in sampled["processes"]}
    assert sorted(by_role) == ["command", "forked"] and len(sampled["processes"]) == 2
    command, fork = by_role["command"], by_role["forked"]
    assert command.start_s <= fork.start_s and command.pid != fork.pid
    assert fork.end_s - fork.start_s >= 0.25 and fork.end_s <= sampled["wall_s"]
    assert fork.cpu_s == sampled["forked"] and command.cpu_s == sampled["command"]


def test_a_fork_that_execs_counts_as_the_program_it_runs(bench, tmp_path, monkeypatch):
    # as multiprocessing starts its fork server: a fork of the command that execs another program. Here the fork
    # first burns 0.1 s running the command's program (so a sample sees it so), then execs a program named like
    # the fork server that burns 0.3 s: the process's whole CPU time (exec keeps it) is the fork server's
    server = BURN + "burn(0.3); time.sleep(0.3)\n"
    script = (BURN + "pid = os.fork()\n"
              "if pid == 0:\n"
              "    burn(0.1)\n"
              f"    os.execv(sys.executable, [sys.executable, '-c', {server!r}, 'multiprocessing.forkserver'])\n"
              "os.waitpid(pid, 0); time.sleep(0.3)\n")
    sampled = _sampled(bench, monkeypatch, tmp_path, script)
    assert sampled["report"] == pytest.approx(0.4, abs=0.08)
    assert sampled["forked"] == 0 and sampled["other"] == 0


def test_a_fork_named_as_a_report_helper_counts_as_the_report(bench, tmp_path, monkeypatch):
    # the report's helper is a fork of the command (same command line) that names itself, and its workers inherit
    # the name: their CPU is the report's, not the training forks'
    from learnact.reporting.parallel import PROCESS_NAME

    assert bench.REPORT_PROCESS == PROCESS_NAME
    script = (BURN + "from learnact._processes import name_process\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    name_process(sys.argv[1])\n"
              "    burn(0.3); time.sleep(0.3); os._exit(0)\n"
              "burn(0.1); os.waitpid(pid, 0); time.sleep(0.1)\n")
    monkeypatch.setattr(bench, "LEARNACT", [sys.executable, "-c", script, PROCESS_NAME])
    sampled = bench.cpu_by_process([], tmp_path, every_s=0.005)
    assert sampled["report"] == pytest.approx(0.3, abs=0.08)
    assert sampled["forked"] == 0 and sampled["other"] == 0  # the command: its burn and the import of learnact


def test_an_ended_fork_not_yet_waited_for_keeps_its_role(bench, tmp_path, monkeypatch):
    # a fork that ends about 0.5 s before the command waits for it: sampled as a zombie (whose command line
    # reads empty) all that while, it is still the command's fork
    script = (BURN + "pid = os.fork()\n"
              "if pid == 0:\n"
              "    burn(0.3); os._exit(0)\n"
              "time.sleep(0.8); os.waitpid(pid, 0); time.sleep(0.1)\n")
    sampled = _sampled(bench, monkeypatch, tmp_path, script)
    assert sampled["forked"] == pytest.approx(0.3, abs=0.08)
    assert sampled["other"] == 0


def test_a_failed_command_raises(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "LEARNACT", [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match="exited 3"):
        bench.cpu_by_process([], tmp_path)


def test_the_benchmark_script_runs_its_help():
    out = subprocess.run([sys.executable, str(BENCHMARKS / "bench_end_to_end.py"), "--help"], capture_output=True,
                         text=True, check=True)
    assert "--skip" in out.stdout
