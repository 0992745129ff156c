import pytest
import torch
from torch import nn

from learnact.config import ActivationConfig
from learnact.model import MLP, GatedActivation, count_parameters, init_parameters_
from learnact.model.state import tensor_state


def test_paper_parameter_counts():
    assert count_parameters(MLP(30, (64, 32), 1, "tanh")) == 4097
    assert count_parameters(MLP(30, (64, 32), 1, ActivationConfig(temperature=0.7))) == 4103
    assert count_parameters(MLP(30, (64, 32), 1, ActivationConfig(gate="input", temperature=0.7))) == 5191


def test_input_gate_from_layer_input_reads_previous_width():
    m = MLP(30, (64, 32), 1, ActivationConfig(gate="input", gate_source="layer"))
    heads = [a.head[0].in_features for a in m.gated_layers()]
    assert heads == [30, 64]
    logits, gates = m.forward_with_gates(torch.randn(5, 30))
    assert logits.shape == (5, 1) and [g.shape for g in gates] == [(5, 3), (5, 3)]


def test_per_layer_specs_and_gate_outputs():
    m = MLP(4, (8, 6), 3, ["relu", ActivationConfig(gate="neuron", candidates=("tanh", "sin"))])
    logits, gates = m.forward_with_gates(torch.randn(2, 4))
    assert logits.shape == (2, 3)
    assert gates[0] is None and gates[1].shape == (6, 2)
    assert isinstance(m.activations[1], GatedActivation)


@pytest.mark.parametrize("hidden", [(0,), (64, 0), ()])
def test_bad_widths(hidden):
    with pytest.raises(ValueError, match="hidden"):
        MLP(30, hidden, 1, "relu")


def test_init_matches_seeded_construction_without_global_state():
    cfg = ActivationConfig(gate="input")
    with torch.random.fork_rng():
        torch.manual_seed(42)
        reference = MLP(30, (64, 32), 1, cfg)
    state_before = torch.random.get_rng_state()
    ours = init_parameters_(MLP(30, (64, 32), 1, cfg), torch.Generator().manual_seed(42))
    for (k, a), (_, b) in zip(tensor_state(reference).items(), tensor_state(ours).items(), strict=True):
        assert torch.equal(a, b), k
    # construction consumed global draws, but init_parameters_ itself drew from the generator:
    m = MLP(3, (2,), 1, "relu")
    torch.random.set_rng_state(state_before)
    w_before = [p.clone() for p in m.parameters()]
    init_parameters_(m, torch.Generator().manual_seed(1))
    assert torch.equal(torch.random.get_rng_state(), state_before)
    assert any(not torch.equal(a, b) for a, b in zip(w_before, m.parameters(), strict=True))


def test_mlp_is_a_plain_module_usable_in_user_code():
    m = MLP(5, (7,), 1, ActivationConfig(candidates=("relu", "gelu", "silu")))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    loss = nn.functional.mse_loss(m(torch.randn(10, 5)), torch.zeros(10, 1))
    loss.backward()
    opt.step()
    assert m.gated_layers()[0].logits.grad is not None
