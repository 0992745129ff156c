"""The examples in examples/ run as a user runs them, on a small budget, and their results feed `learnact compare`."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import learnact
from learnact.cli.errors import DEBUG_ENV

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(learnact.__file__).resolve().parent.parent
CNN = ROOT / "examples" / "cnn_digits.py"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    return env


def _example(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn") / "out"
    proc = subprocess.run([sys.executable, str(CNN), "--out", str(out), "--seeds", "2", "--epochs", "12"],
                          capture_output=True, text=True, env=_env(), timeout=600, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_cnn_example_writes_finite_results_well_above_chance(cnn_run):
    out, stdout = cnn_run
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == ["variant", "seed", "accuracy", "log_loss", "epochs", "train_time_s", "n_train",
                                   "n_test"]
    assert sorted(zip(table["variant"], table["seed"], strict=True)) == [("gated", 0), ("gated", 1), ("relu", 0),
                                                                         ("relu", 1)]
    metrics = table[["accuracy", "log_loss", "epochs", "train_time_s"]].to_numpy(float)
    assert np.isfinite(metrics).all()
    assert (table["accuracy"] > 0.5).all(), table  # ten classes: chance is 0.1
    assert ((table["epochs"] >= 1) & (table["epochs"] <= 12)).all()
    assert (table["n_train"] + table["n_test"] < 1797).all()  # a validation part is held out
    assert f"learnact compare {out / 'results.csv'} --reference relu" in stdout


def test_cnn_example_replaces_every_relu_and_keeps_the_twins_weights(cnn_run):
    cnn = _example(CNN)
    torch.manual_seed(0)
    relu_net = cnn.small_cnn()
    relus = [name for name, m in relu_net.named_modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 2
    out, _ = cnn_run
    assert json.loads((out / "replaced.json").read_text()) == relus
    gated, replaced = cnn.gated_twin(relu_net)
    assert replaced == relus
    assert not any(isinstance(m, nn.ReLU) for m in gated.modules())
    gates = [m for m in gated.modules() if isinstance(m, learnact.GatedActivation)]
    assert [tuple(g.gate_weights().shape) for g in gates] == [(8, 3), (16, 3)]  # one gate per channel
    x = cnn.splits(0)["test"][0][:5]
    assert gated(x).shape == relu_net(x).shape == (5, 10)
    # the same initial weights: with every gate set to relu alone, the gated twin computes the ReLU net
    with torch.no_grad():
        for g in gates:
            g.logits.copy_(torch.tensor([60.0, 0.0, 0.0]).expand_as(g.logits))
    torch.testing.assert_close(gated(x), relu_net(x), atol=1e-5, rtol=0)


def test_compare_reads_the_examples_results(cnn_run):
    out, _ = cnn_run
    script = Path(sys.executable).with_name("learnact")
    prefix = [str(script)] if script.is_file() else [sys.executable, "-m", "learnact"]
    proc = subprocess.run([*prefix, "compare", str(out / "results.csv"), "--reference", "relu"],
                          capture_output=True, text=True, env=_env(), timeout=300, cwd=out)
    assert proc.returncode == 0, proc.stderr
    assert "vs relu (given)" in proc.stdout and "Nadeau-Bengio" in proc.stdout  # the split changes with the seed
    rows = [line for line in proc.stdout.splitlines() if "gated" in line]
    assert {m for m in ("accuracy", "log_loss", "train_time_s") if any(m in r for r in rows)} == {
        "accuracy", "log_loss", "train_time_s"}
    assert "Not compared (direction unknown): epochs" in " ".join(proc.stdout.split())  # the caption wraps
