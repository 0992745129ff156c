"""Test helpers for code that forks: a test case run in a fresh interpreter, and a worker that waits for a file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parent
"""This folder (on the fresh interpreter's ``PYTHONPATH``, so a case can import these helpers too)."""

_CASE = """
import importlib, sys
module, case = sys.argv[1], sys.argv[2]
getattr(importlib.import_module(module), case)(*sys.argv[3:])
print("case passed")
"""


def run_case(test_file: str, case: str, *args: str, timeout: float = 300) -> None:
    """Call ``case(*args)`` of the test module ``test_file`` (its ``__file__``) in a fresh interpreter; fail with
    the interpreter's output unless the case returns.

    For a test whose code forks only where no other thread runs: in the test run's own process an earlier test
    may have left a thread, and a fork is then (rightly) refused.
    """
    path = Path(test_file).resolve()
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(path.parent), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _CASE, path.stem, case, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0 and done.stdout.strip().endswith("case passed"), done.stdout + done.stderr


def waits_for(path: str, timeout_s: float = 60) -> bool:
    """Wait until ``path`` exists (``True``), at most ``timeout_s`` seconds (``False``): a worker that can finish
    only after its caller's own work created the file."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False


def wait_until(predicate: Callable[[], bool], what: str, proc: subprocess.Popen | None = None,
               limit_s: float = 300.0) -> None:
    """Poll ``predicate`` until it holds; fail (not hang) if ``proc`` exits first (with the end of its stderr,
    where it was piped) or after ``limit_s`` seconds, naming ``what`` was awaited."""
    import pytest

    deadline = time.monotonic() + limit_s
    while not predicate():
        if proc is not None and proc.poll() is not None:
            err = proc.communicate()[1] if proc.stderr is not None else ""
            pytest.fail(f"process exited ({proc.returncode}) before {what}: {(err or '')[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.005)
