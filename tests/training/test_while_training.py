"""``while_stacks_train``: the process that hands stacks to forked workers gets work of its own while they train.

Each case runs in a fresh interpreter: stacks train in forked workers only where no other thread runs, and an
earlier test in this process may have left one."""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import pytest

from subprocesses import run_case, waits_for


def _case_the_callback_runs_here_while_the_forked_workers_train(tmp: str) -> None:
    # The stacks wait for a file only the callback creates: had it run after them (or before they were handed
    # out, blocking them), they would have given up or waited on it.
    from learnact._processes import can_fork
    from learnact.training.scheduling import run_stacks, while_stacks_train

    assert can_fork(True)
    flag = Path(tmp) / "imported"
    calls: list[int] = []

    def callback() -> None:
        calls.append(os.getpid())
        flag.touch()

    with while_stacks_train(callback):
        out = list(run_stacks([functools.partial(waits_for, str(flag))] * 2, [1.0, 2.0], workers=2,
                              executor="processes"))
    assert sorted(i for i, _ in out) == [0, 1] and all(ok for _, ok in out)
    assert calls == [os.getpid()]
    # in this process (one worker, or inline), and outside the block: nothing is called
    with while_stacks_train(callback):
        assert list(run_stacks([lambda: 7], [1.0], workers=1)) == [(0, 7)]
        assert list(run_stacks([lambda: 8] * 2, [1.0, 1.0], workers=2, executor="inline")) == [(0, 8), (1, 8)]
    assert sorted(run_stacks([lambda: 9] * 2, [1.0, 1.0], workers=2, executor="processes")) == [(0, 9), (1, 9)]
    assert calls == [os.getpid()]


def _case_an_error_in_the_callback_stops_the_training(tmp: str) -> None:
    from learnact.training.scheduling import run_stacks, while_stacks_train

    def fails() -> None:
        raise RuntimeError("no space left for the imports")

    with while_stacks_train(fails), pytest.raises(RuntimeError, match="no space left"):
        list(run_stacks([functools.partial(time.sleep, 0.05)] * 2, [1.0, 1.0], workers=2, executor="processes"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="stacks train in forked workers only where there is fork")
@pytest.mark.parametrize("case", [name for name in dir(sys.modules[__name__]) if name.startswith("_case_")])
def test_while_stacks_train(case, tmp_path):
    run_case(__file__, case, str(tmp_path))
