"""The report's cost figure orders tanh, a gated mixture and an input gate as training each alone does.

A study of the three (trained by the vectorised engine, whose stacks share wall time between members) goes
through the console script with its report. The cost figure's FLOPs and step-latency panels and
leaderboard.csv must order them tanh < layer-gate mixture < input gate, and so must an independent timing of
each variant trained alone here, with ``torch.optim.Adam`` and the reference trainer's step. The stack's own
wall-time shares (``stack_time_s``) are what the figure used to draw; they stay available but are not what it
shows. The input gate's head is wide (256 units) so that the three are well apart in time.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
import pandas as pd
import torch
from figure_panels import panel_means

from console import run_learnact
from learnact.config import ActivationConfig, TrainConfig
from learnact.model import MLP
from learnact.reporting import load_study_view
from learnact.reporting.fig_performance import cost_figure
from learnact.training.loop import make_optimizer, train_step

ACTS = {
    "tanh": {"kind": "fixed", "activation": "tanh"},
    "mixture": {"kind": "gated", "gate": "layer", "candidates": ["relu", "tanh", "sigmoid"]},
    "input_gate": {"kind": "gated", "gate": "input", "candidates": ["relu", "tanh", "sigmoid"], "gate_hidden": 256},
}
STUDY = {
    "name": "cost_order",
    "seeds": [1, 2],
    "backbone": {"hidden": [64, 32]},
    "train": {"max_epochs": 3, "patience": 3, "batch_size": 128},
    "variants": [{"name": name, **act} for name, act in ACTS.items()],
}


def _alone_ms(rounds: int = 5, steps: int = 20) -> dict[str, float]:
    """Median step time of each variant trained alone with torch.optim.Adam (interleaved rounds), ms."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 30, generator=g), (torch.rand(128, 1, generator=g) > 0.5).float()
    cfg = TrainConfig()
    models = {name: MLP(30, (64, 32), 1, ActivationConfig(**act)) for name, act in ACTS.items()}
    opts = {name: make_optimizer(m, cfg) for name, m in models.items()}
    medians: dict[str, list[float]] = {name: [] for name in models}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, m in models.items():
            for _ in range(3):
                train_step(m, opts[name], x, y, 0.0)
        for _ in range(rounds):
            for name, m in models.items():
                times = []
                for _ in range(steps):
                    start = time.perf_counter()
                    train_step(m, opts[name], x, y, 0.0)
                    times.append(time.perf_counter() - start)
                medians[name].append(statistics.median(times) * 1000)
    finally:
        torch.set_num_threads(before)
    return {name: statistics.median(v) for name, v in medians.items()}


def test_cost_figure_orders_tanh_mixture_and_input_gate_as_training_alone_does(tmp_path):
    (tmp_path / "study.json").write_text(json.dumps(STUDY))
    done = run_learnact("run", "--config", "study.json", "--out", "out", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    order = list(ACTS)
    view = load_study_view(tmp_path / "out")
    fig, _ = cost_figure(view)
    flops, latency = panel_means(fig, "FLOPs per sample"), panel_means(fig, "Training step latency")
    assert sorted(order, key=flops.get) == order, flops
    assert sorted(order, key=latency.get) == order, latency
    board = pd.read_csv(tmp_path / "out" / "report" / "tables" / "leaderboard.csv").set_index("variant")
    assert sorted(order, key=board["step_latency_ms_mean"].get) == order
    assert sorted(order, key=board["flops_per_sample_mean"].get) == order
    for v in order:  # the figure draws what the runs saved: the variant timed alone, not its stack share
        assert latency[v] == float(np.nanmean(view.run_quantity(v, "step_latency_ms")))
        assert np.isfinite(view.run_quantity(v, "stack_time_s")).all()
    alone = _alone_ms()
    assert sorted(order, key=alone.get) == order, alone
