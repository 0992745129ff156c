"""PyTorch for ``learnact run`` without its meta-tensor kernels, loaded on first use (learnact._torch_import).

The cases run in fresh interpreters (:func:`tests.subprocesses.run_case`): the test run's own process has torch
loaded already. The command's own process is checked through the console's ``main`` in a subprocess, as in
tests/cli/test_entry.py's injected errors.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from learnact._torch_import import DEFERRED, ENV
from learnact.evaluation.quantities import MACHINE_QUANTITIES
from subprocesses import run_case

SRC = Path(__file__).resolve().parents[1] / "src"


def _train_a_little() -> list[float]:
    """A few Adam steps of a small MLP, in float64 so the digits say whether anything computed otherwise."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(32, 5, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


# -- cases, each run in a fresh interpreter -----------------------------------------------------------------------


def case_deferred_and_eager_work_alike(expected: str) -> None:
    from learnact._torch_import import import_torch

    assert import_torch() is True
    import torch

    assert DEFERRED not in sys.modules and "torch._decomp" not in sys.modules
    assert not hasattr(torch, "_meta_registrations")
    torch.Generator()  # needs torch._prims.rng_prims, which the deferred module's imports would have loaded
    assert repr(_train_a_little()) == expected  # the same digits as with torch imported whole
    assert import_torch() is False  # loaded already: nothing to do


def case_first_use_loads_it(entry: str) -> None:
    from learnact._torch_import import import_torch

    assert import_torch() is True
    import importlib

    import torch

    module = importlib.import_module(entry)  # the first import of a module of the cycle (or of fake tensors)
    assert module.__spec__ is not None and module.__spec__.origin.endswith(".py")  # its own spec, not the finder's
    # fake tensors propagate shapes through meta kernels
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        out = torch.nn.functional.gelu(torch.empty(3, 4)) @ torch.empty(4, 2)
    assert tuple(out.shape) == (3, 2)
    import torch._decomp

    assert hasattr(sys.modules[DEFERRED], "activate_meta"), "the real module, with its kernels registered"
    assert len(torch._decomp.global_decomposition_table["meta"]) > 100


def case_whole(why: str) -> None:
    import learnact._torch_import as ti

    if why == "release":  # a release it was not checked on
        ti.CHECKED_RELEASES = ()
    assert ti.import_torch() is False
    assert hasattr(sys.modules[DEFERRED], "activate_meta")


def case_torch_first() -> None:
    import torch  # noqa: F401

    from learnact._torch_import import import_torch

    assert import_torch() is False


# -- tests ----------------------------------------------------------------------------------------------------


def _whole_digits() -> str:
    done = subprocess.run([sys.executable, "-c", "import sys; sys.path[:0] = sys.argv[1:]; import test_torch_import "
                           "as t; print(repr(t._train_a_little()))", str(Path(__file__).parent),
                           str(Path(__file__).parent)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_torch_without_its_meta_kernels_trains_to_the_same_digits():
    run_case(__file__, "case_deferred_and_eager_work_alike", _whole_digits())


@pytest.mark.parametrize("entry", [DEFERRED, "torch._decomp", "torch._refs", "torch._decomp.decompositions",
                                   "torch._subclasses.fake_tensor"])
def test_the_first_import_that_needs_them_loads_them(entry):
    run_case(__file__, "case_first_use_loads_it", entry)


def test_torch_is_imported_whole_for_an_unchecked_release():
    run_case(__file__, "case_whole", "release")


def test_the_environment_variable_imports_torch_whole(monkeypatch):
    monkeypatch.setenv(ENV, "1")
    run_case(__file__, "case_whole", "env")


def test_torch_imported_already_is_left_as_it_is():
    run_case(__file__, "case_torch_first")


SPY = textwrap.dedent("""
    import sys

    import learnact.cli.display as display
    from learnact.cli import main

    real = display.print_leaderboard

    def spy(*args, **kwargs):  # once training is over, in the command's own process
        print("meta kernels loaded:", "torch._meta_registrations" in sys.modules, flush=True)
        return real(*args, **kwargs)

    display.print_leaderboard = spy
    main(sys.argv[1:])
""")

TINY = """
name = "tiny"
seeds = [1, 2]
[backbone]
hidden = [6]
[train]
max_epochs = 4
[[variants]]
name = "tanh"
kind = "fixed"
activation = "tanh"
[[variants]]
name = "gated"
kind = "gated"
candidates = ["relu", "tanh"]
"""


def _run(tmp_path: Path, out: str, *args: str, **env: str) -> tuple[str, list[dict[str, str]]]:
    environment = {k: v for k, v in os.environ.items() if k != ENV}
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), str(tmp_path), os.environ.get("PYTHONPATH", ""))
                                                if p)
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", SPY, "run", "tiny.toml", "--out", out, "--no-report", "-q", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / out / "leaderboard.csv", newline="") as f:  # all but the wall-clock columns
        rows = [{k: v for k, v in row.items() if not k.startswith(_CLOCKS)} for row in csv.DictReader(f)]
    return next(line for line in done.stdout.splitlines() if line.startswith("meta kernels")), rows


_CLOCKS = ("time_", *MACHINE_QUANTITIES)
"""Leaderboard columns that measure the machine (training time, step latency, memory): they differ between any
two runs."""


def test_learnact_run_trains_without_them_and_to_the_same_results(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "myplugin.py").write_text("X = 1\n")  # a plugin: its code may need all of torch
    deferred = _run(tmp_path, "a")
    whole = _run(tmp_path, "b", **{ENV: "1"})
    with_plugin = _run(tmp_path, "c", "--plugin", "myplugin")
    # a GPU where there is one (the sequential engine trains there): not checked without them
    device_auto = _run(tmp_path, "d", "--device", "auto", "--engine", "sequential")
    assert deferred[0] == "meta kernels loaded: False"
    assert whole[0] == with_plugin[0] == device_auto[0] == "meta kernels loaded: True"
    assert deferred[1] == whole[1] == with_plugin[1]  # every metric, to the last digit written
