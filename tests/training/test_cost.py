"""What a variant costs trained alone: FLOPs, step latency and activation memory (learnact.training.cost)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from learnact.config import ActivationConfig, TrainConfig
from learnact.model import MLP, list_families
from learnact.model.state import tensor_state
from learnact.training.cost import (
    FunctionalAdam,
    activation_bytes,
    count_flops,
    measure_step_cost,
    measure_step_costs,
)
from learnact.training.loop import make_optimizer, optimizer_groups, train_step
from learnact.training.objective import batch_objective

D, HIDDEN, B = 30, (64, 32), 64

TANH = ActivationConfig(kind="fixed", activation="tanh")
LAYER_GATE = ActivationConfig(kind="gated", gate="layer", candidates=("relu", "tanh", "sigmoid"))
INPUT_GATE = ActivationConfig(kind="gated", gate="input", candidates=("relu", "tanh", "sigmoid"))


def _batch(b: int = B, d: int = D) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, d, generator=g), (torch.rand(b, 1, generator=g) > 0.5).float()


def _model(act: ActivationConfig, hidden=HIDDEN) -> MLP:
    torch.manual_seed(0)
    return MLP(D, hidden, 1, act)


@pytest.mark.parametrize("act", [TANH, LAYER_GATE, INPUT_GATE], ids=["tanh", "layer", "input"])
def test_matmul_flops_are_flop_counter_modes_count(act):
    # The counting mode reads FlopCounterMode's formulas without entering it; entering it must agree.
    x, y = _batch()
    model = _model(act)
    with FlopCounterMode(display=False) as counter:
        batch_objective(model, x, y, 0.0)[0].backward()
    matmul, _ = count_flops(model, x, y)
    assert matmul == counter.get_total_flops() > 0


def test_matmul_flops_match_the_layer_shapes():
    # forward 2*b*in*out per Linear; backward: weight grads for every layer, input grads for all but the first
    x, y = _batch()
    widths = [D, *HIDDEN, 1]
    pairs = list(zip(widths[:-1], widths[1:], strict=True))
    forward = sum(2 * B * i * o for i, o in pairs)
    backward = sum(2 * B * i * o for i, o in pairs) + sum(2 * B * i * o for i, o in pairs[1:])
    assert count_flops(_model(TANH), x, y)[0] == forward + backward


def test_a_gated_layer_counts_its_candidates_elementwise():
    # FlopCounterMode counts no activation; mixing three candidates costs at least relu, tanh, sigmoid,
    # three products and two sums per unit in the forward pass alone, against one tanh.
    x, y = _batch()
    _, fixed = count_flops(_model(TANH), x, y)
    _, mixed = count_flops(_model(LAYER_GATE), x, y)
    assert mixed - fixed >= B * sum(HIDDEN) * (8 - 1)


def test_activation_memory_grows_by_one_float_per_tanh_unit():
    # A tanh layer saves its output for backward (float32), the next Linear reuses that same tensor.
    x, y = _batch()
    small = activation_bytes(_model(TANH, (64, 32)), x, y)
    wide = activation_bytes(_model(TANH, (80, 32)), x, y)
    assert wide - small == B * 16 * 4


def test_measuring_leaves_the_model_and_threads_alone():
    x, y = _batch()
    model = _model(LAYER_GATE)
    before = {k: v.clone() for k, v in tensor_state(model).items()}
    threads = torch.get_num_threads()
    cost = measure_step_cost(model, x, y, TrainConfig(), warmup=1, steps=3)
    assert all(torch.equal(before[k], v) for k, v in tensor_state(model).items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.get_num_threads() == threads
    assert cost.batch_size == B and cost.step_latency_ms > 0 and cost.activation_bytes_per_sample > 0
    assert cost.flops_per_sample == cost.matmul_flops_per_sample + cost.elementwise_flops_per_sample
    assert set(cost.metrics()) == {"flops_per_sample", "step_latency_ms", "activation_bytes_per_sample"}


def test_bad_step_counts_are_refused():
    x, y = _batch()
    with pytest.raises(ValueError, match="steps=0"):
        measure_step_cost(_model(TANH), x, y, TrainConfig(), steps=0)


def test_tanh_costs_less_than_a_layer_gate_which_costs_less_than_an_input_gate():
    # The ordering, by FLOPs, activation memory and step latency. Latency is noisy on a shared
    # machine, so it is compared only between clearly separated cases: the input gate's head is made wide
    # (256 units); measure_step_costs times the variants in interleaved rounds, as a study does.
    x, y = _batch(128)
    acts = {"tanh": TANH, "layer": LAYER_GATE, "input": INPUT_GATE.model_copy(update={"gate_hidden": 256})}
    costs = measure_step_costs({name: (_model(act), x, y, TrainConfig()) for name, act in acts.items()},
                               warmup=3, steps=20, rounds=5)
    assert list(costs) == ["tanh", "layer", "input"]
    assert costs["tanh"].flops_per_sample < costs["layer"].flops_per_sample < costs["input"].flops_per_sample
    assert (costs["tanh"].activation_bytes_per_sample < costs["layer"].activation_bytes_per_sample
            < costs["input"].activation_bytes_per_sample)
    latency = {name: c.step_latency_ms for name, c in costs.items()}
    assert latency["tanh"] < latency["layer"] < latency["input"], latency


def test_measuring_variants_together_counts_what_measuring_each_alone_counts():
    x, y = _batch()
    together = measure_step_costs({"tanh": (_model(TANH), x, y, TrainConfig()),
                                   "input": (_model(INPUT_GATE), x, y, TrainConfig())}, warmup=1, steps=2, rounds=2)
    for name, act in (("tanh", TANH), ("input", INPUT_GATE)):
        alone = measure_step_cost(_model(act), x, y, TrainConfig(), warmup=1, steps=2)
        assert together[name].flops_per_sample == alone.flops_per_sample
        assert together[name].activation_bytes_per_sample == alone.activation_bytes_per_sample
        assert together[name].step_latency_ms > 0
    with pytest.raises(ValueError, match="rounds=0"):
        measure_step_costs({"tanh": (_model(TANH), x, y, TrainConfig())}, rounds=0)


def test_the_default_input_gate_costs_more_flops_than_a_layer_gate():
    # its gating head (gate_hidden=16) is matrix products on the network input in every hidden layer
    x, y = _batch()
    layer, inputs = (count_flops(_model(act), x, y) for act in (LAYER_GATE, INPUT_GATE))
    head = sum(2 * B * (D * 16 + 16 * 3) for _ in HIDDEN)  # forward products of the two heads' Linears
    assert inputs[0] - layer[0] >= 2 * head  # forward and the weight gradients at least


@pytest.mark.parametrize("family", list_families())
def test_every_family_has_a_finite_positive_cost(family):
    x, y = _batch(16)
    cost = measure_step_cost(_model(ActivationConfig(kind=family)), x, y, TrainConfig(), warmup=1, steps=2)
    _, fixed = count_flops(_model(ActivationConfig(kind="fixed", activation="identity")), x, y)
    assert np.isfinite(cost.step_latency_ms) and cost.step_latency_ms > 0
    assert cost.activation_bytes_per_sample > 0
    # a learnable family computes more per unit than the identity does
    assert cost.elementwise_flops_per_sample > fixed / 16


@pytest.mark.parametrize("decay_activations", [True, False], ids=["decay-all", "decay-linears"])
@pytest.mark.parametrize("act", [TANH, LAYER_GATE, ActivationConfig(kind="prelu")],
                         ids=["tanh", "layer", "prelu"])
def test_functional_adam_follows_torch_optim_adam_bit_for_bit(act, decay_activations):
    # The latency measurement steps with FunctionalAdam (no torch._dynamo import); its weights must be
    # those torch.optim.Adam gives over the reference trainer's own parameter groups.
    cfg = TrainConfig(lr=0.01, weight_decay=0.05, weight_decay_activations=decay_activations)
    x, y = _batch()
    a, b = _model(act), _model(act)
    ref = make_optimizer(a, cfg)
    mine = FunctionalAdam(optimizer_groups(b, cfg), lr=cfg.lr)
    assert len(mine.groups) == len(ref.param_groups) == (1 if decay_activations or act == TANH else 2)
    for _ in range(5):
        train_step(a, ref, x, y, 0.01)
        train_step(b, mine, x, y, 0.01)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_measuring_cost_does_not_import_torch_dynamo():
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from learnact.config import ActivationConfig, TrainConfig\n"
            "from learnact.model import MLP\n"
            "from learnact.training.cost import measure_step_cost\n"
            "m = MLP(4, (8,), 1, ActivationConfig(kind='gated', gate='input', candidates=('relu', 'tanh')))\n"
            "measure_step_cost(m, torch.randn(8, 4), torch.ones(8, 1), TrainConfig(), warmup=1, steps=2)\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("kind", ["gated", *list_families()])
def test_activation_bytes_are_the_same_for_every_draw_of_the_weights(kind):
    # keyed by storage address alone, a tensor saved by a part of the graph dropped during the forward left its
    # address to a later one, whose size then replaced it: the spline's count varied from 770,056 to 819,208
    # bytes with the initial weights, and so between seeds of one variant
    from learnact.model import init_parameters_
    from learnact.training import run_generator

    counts = set()
    for seed in range(8):
        model = init_parameters_(MLP(30, (64, 32), 1, ActivationConfig(kind=kind)), run_generator(seed))
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(64, 30, generator=g), torch.randint(0, 2, (64,), generator=g).float()
        counts.add(activation_bytes(model, x, y))
    assert len(counts) == 1, sorted(counts)
