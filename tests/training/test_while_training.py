"""``while_stacks_train``: the process that hands stacks to forked workers gets work of its own while they train."""

from __future__ import annotations

import functools
import os
import time

import pytest

from learnact._processes import can_fork
from learnact.training.scheduling import run_stacks, while_stacks_train


def _waits_for(path: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False


@pytest.mark.skipif(not can_fork(True), reason="stacks train in forked workers only where this process may fork")
def test_the_callback_runs_here_while_the_forked_workers_train(tmp_path):
    # The stacks wait for a file only the callback creates: had it run after them (or before they were handed
    # out, blocking them), they would have given up or waited on it.
    flag = tmp_path / "imported"
    calls: list[int] = []

    def callback() -> None:
        calls.append(os.getpid())
        flag.touch()

    with while_stacks_train(callback):
        out = list(run_stacks([functools.partial(_waits_for, str(flag))] * 2, [1.0, 2.0], workers=2,
                              executor="processes"))
    assert sorted(i for i, _ in out) == [0, 1] and all(ok for _, ok in out)
    assert calls == [os.getpid()]
    # in this process (one worker, or inline), and outside the block: nothing is called
    with while_stacks_train(callback):
        assert list(run_stacks([lambda: 7], [1.0], workers=1)) == [(0, 7)]
    assert list(run_stacks([lambda: 8] * 2, [1.0, 1.0], workers=2, executor="inline")) == [(0, 8), (1, 8)]
    assert sorted(run_stacks([lambda: 9] * 2, [1.0, 1.0], workers=2, executor="processes")) == [(0, 9), (1, 9)]
    assert calls == [os.getpid()]


def test_an_error_in_the_callback_stops_the_training():
    def fails() -> None:
        raise RuntimeError("no space left for the imports")

    if not can_fork(True):
        pytest.skip("stacks train in forked workers only where this process may fork")
    with while_stacks_train(fails), pytest.raises(RuntimeError, match="no space left"):
        list(run_stacks([functools.partial(time.sleep, 0.05)] * 2, [1.0, 1.0], workers=2, executor="processes"))
