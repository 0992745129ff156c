import math

import pytest
import torch

from learnact.model.activations import GatedActivation, gate_entropy, get_candidate, softmax_gate


def test_softmax_temperature_worked_example():
    logits = torch.tensor([1.0, 2.0, 3.0])
    got = softmax_gate(logits, 0.5)
    e = [math.exp(2.0), math.exp(4.0), math.exp(6.0)]
    want = torch.tensor([v / sum(e) for v in e])
    assert torch.allclose(got, want, atol=1e-7)
    # T = 1 is the plain softmax; large T tends to uniform
    assert torch.allclose(softmax_gate(logits, 1.0), torch.softmax(logits, 0))
    assert torch.allclose(softmax_gate(logits, 1e6), torch.full((3,), 1 / 3), atol=1e-5)


def test_entropy_worked_examples():
    w = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.7, 0.2, 0.1]])
    h = gate_entropy(w)
    want = [math.log(3), 0.0, math.log(2), -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))]
    assert torch.allclose(h, torch.tensor(want), atol=1e-6)


def test_forward_is_by_hand_weighted_sum():
    act = GatedActivation(("relu", "tanh", "sigmoid"), temperature=0.7)
    with torch.no_grad():
        act.logits.copy_(torch.tensor([0.2, -0.5, 1.0]))
    x = torch.randn(5, 4)
    z = torch.tensor([0.2, -0.5, 1.0]) / 0.7
    g = torch.exp(z) / torch.exp(z).sum()
    want = g[0] * torch.relu(x) + g[1] * torch.tanh(x) + g[2] * torch.sigmoid(x)
    assert torch.allclose(act(x), want, atol=1e-6)
    assert torch.allclose(act.gate_weights(), g, atol=1e-6)


def test_logits_start_uniform():
    act = GatedActivation(("relu", "tanh", "sigmoid", "gelu"))
    assert torch.allclose(act.gate_weights(), torch.full((4,), 0.25))
    assert math.isclose(float(act.entropy().detach()), math.log(4), rel_tol=1e-6)


def test_small_temperature_selects_argmax_candidate():
    act = GatedActivation(("relu", "tanh", "sigmoid"), temperature=1e-3)
    with torch.no_grad():
        act.logits.copy_(torch.tensor([0.1, 0.5, 0.2]))
    x = torch.randn(8, 6)
    assert torch.allclose(act(x), torch.tanh(x), atol=1e-6)
    assert float(act.entropy().detach()) < 1e-6


def test_per_neuron_gate_shapes_and_values():
    act = GatedActivation(("relu", "sin"), gate="neuron", width=5)
    assert act.logits.shape == (5, 2)
    with torch.no_grad():
        act.logits[0] = torch.tensor([10.0, -10.0])
    w = act.gate_weights()
    assert w.shape == (5, 2) and torch.allclose(w.sum(-1), torch.ones(5))
    x = torch.randn(3, 5)
    y = act(x)
    assert y.shape == (3, 5)
    assert torch.allclose(y[:, 1:], 0.5 * torch.relu(x[:, 1:]) + 0.5 * torch.sin(x[:, 1:]), atol=1e-6)


def test_input_gate_shapes_and_context():
    act = GatedActivation(("relu", "tanh", "sigmoid"), gate="input", width=6, context_dim=4, gate_hidden=7)
    x, ctx = torch.randn(9, 6), torch.randn(9, 4)
    w = act.gate_weights(ctx)
    assert w.shape == (9, 3) and torch.allclose(w.sum(-1), torch.ones(9))
    y, used = act.forward_with_weights(x, ctx)
    assert y.shape == (9, 6) and torch.equal(used, w)
    fns = [get_candidate(n) for n in ("relu", "tanh", "sigmoid")]
    want = sum(w[:, k : k + 1] * fns[k](x) for k in range(3))
    assert torch.allclose(y, want, atol=1e-6)
    assert math.isclose(float(act.entropy(ctx).detach()), float(gate_entropy(w).mean().detach()), rel_tol=1e-6)
    # drop-in use: without a context the pre-activation itself feeds the head
    own = GatedActivation(("relu", "tanh"), gate="input", width=6)
    assert own(x).shape == (9, 6)
    with pytest.raises(ValueError, match="context"):
        act.gate_weights(None)


@pytest.mark.parametrize("gate", ["layer", "neuron", "input"])
def test_mixture_gradcheck_float64(gate):
    torch.manual_seed(0)
    act = GatedActivation(("relu", "tanh", "sigmoid", "sin"), gate=gate, width=3, context_dim=3,
                          temperature=0.8).double()
    if act.logits is not None:
        with torch.no_grad():
            act.logits.normal_()
    x = torch.tensor([[-1.2, 0.4, 2.1], [0.7, -0.3, 1.5]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: act(inp), (x,))
    names = [n for n, _ in act.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in act.parameters())
    assert params and all(p.dtype == torch.float64 for p in params)

    def through_params(*ps):
        return torch.func.functional_call(act, dict(zip(names, ps, strict=True)), (x.detach(),))

    assert torch.autograd.gradcheck(through_params, params)


def test_temperature_is_a_buffer_that_changes_the_mixture():
    act = GatedActivation(("relu", "tanh"), temperature=2.0)
    assert "temperature" in dict(act.named_buffers())
    assert "temperature" not in dict(act.named_parameters())
    with torch.no_grad():
        act.logits.copy_(torch.tensor([1.0, 0.0]))
        before = act.gate_weights().clone()
        act.temperature.fill_(0.1)
    assert act.gate_weights()[0] > before[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": 0.0}, r"temperature must be > 0, got temperature=0.0"),
        ({"temperature": -1.0}, r"temperature must be > 0"),
        ({"candidates": ()}, r"candidates must name at least one activation"),
        ({"candidates": ("relu", "nope")}, r"unknown activation 'nope'.*valid: .*tanh"),
        ({"gate": "neuron"}, r"gate='neuron' needs width"),
        ({"gate": "sample"}, r"gate must be 'layer', 'neuron' or 'input'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GatedActivation(**kwargs)


def test_repr_shows_candidates_temperature_and_gate():
    text = repr(GatedActivation(("relu", "tanh"), gate="neuron", width=3, temperature=0.7))
    assert "candidates=['relu', 'tanh']" in text and "gate='neuron'" in text and "temperature=0.7" in text
