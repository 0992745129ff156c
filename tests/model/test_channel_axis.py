"""Per-channel gates and families on (N, C, L) and (N, C, H, W): the unit axis is ``dim``."""

import pytest
import torch

from learnact.config import ActivationConfig
from learnact.model import build_activation
from learnact.model.activations import GatedActivation, get_candidate, get_family

CANDIDATES = ("relu", "tanh", "sin")


def _by_hand_per_channel(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``y[:, ch] = sum_k weights[ch, k] * phi_k(x[:, ch])``, one channel at a time."""
    fns = [get_candidate(n) for n in CANDIDATES]
    out = torch.empty_like(x)
    for ch in range(x.shape[1]):
        xc = x[:, ch]
        out[:, ch] = sum(float(weights[ch, k]) * fns[k](xc) for k in range(len(fns)))
    return out


@pytest.mark.parametrize("shape", [(4, 3, 7), (2, 3, 5, 6)], ids=["NCL", "NCHW"])
def test_per_channel_gates_equal_a_per_channel_mixture_by_hand(shape):
    torch.manual_seed(0)
    act = GatedActivation(CANDIDATES, gate="neuron", width=3, dim=1)
    with torch.no_grad():
        act.logits.copy_(torch.randn(3, 3) * 2)
    x = torch.randn(*shape)
    weights = torch.softmax(act.logits.detach(), dim=-1)
    assert torch.allclose(act(x), _by_hand_per_channel(x, weights), atol=1e-6)


def test_width_equal_to_the_last_axis_still_gates_the_channels():
    """W == C: with dim=1 the channels are gated, not the W axis (the old silent failure)."""
    torch.manual_seed(1)
    act = GatedActivation(CANDIDATES, gate="neuron", width=4, dim=1)
    with torch.no_grad():
        act.logits.copy_(torch.randn(4, 3) * 3)
    x = torch.randn(2, 4, 3, 4)
    weights = torch.softmax(act.logits.detach(), dim=-1)
    assert torch.allclose(act(x), _by_hand_per_channel(x, weights), atol=1e-6)
    last_axis = GatedActivation(CANDIDATES, gate="neuron", width=4)  # dim=-1 gates W here
    last_axis.load_state_dict(act.state_dict())
    assert not torch.allclose(last_axis(x), act(x))


def test_dim_one_on_two_d_input_is_the_feature_axis():
    act = GatedActivation(CANDIDATES, gate="neuron", width=5, dim=1)
    twin = GatedActivation(CANDIDATES, gate="neuron", width=5)
    with torch.no_grad():
        act.logits.copy_(torch.randn(5, 3))
        twin.logits.copy_(act.logits)
    x = torch.randn(8, 5)
    assert torch.equal(act(x), twin(x))


@pytest.mark.parametrize("shape", [(4, 3, 7), (2, 3, 5, 6)], ids=["NCL", "NCHW"])
def test_per_unit_prelu_equals_torch_prelu_per_channel(shape):
    torch.manual_seed(2)
    act = get_family("prelu")(width=3, dim=1, granularity="unit")
    ref = torch.nn.PReLU(num_parameters=3)
    with torch.no_grad():
        act.slope.copy_(torch.tensor([0.1, -0.3, 0.7]))
        ref.weight.copy_(act.slope)
    x = torch.randn(*shape)
    assert torch.allclose(act(x), ref(x), atol=1e-7)


def test_per_unit_pwl_applies_each_channels_own_curve():
    torch.manual_seed(3)
    act = get_family("pwl")(width=3, dim=1, granularity="unit", segments=4)
    with torch.no_grad():
        act.values.copy_(torch.randn(3, 5))
    x = torch.randn(2, 3, 4, 5)
    want = torch.empty_like(x)
    for ch in range(3):  # one channel's curve on all its positions: the (N, F) module on a flat view
        one = get_family("pwl")(width=1, granularity="unit", segments=4)
        with torch.no_grad():
            one.values.copy_(act.values[ch : ch + 1])
        want[:, ch] = one(x[:, ch].reshape(-1, 1)).reshape(x[:, ch].shape)
    assert torch.allclose(act(x), want, atol=1e-6)


def test_a_mismatched_layout_names_sizes_axis_shape_and_fix():
    act = GatedActivation(CANDIDATES, gate="neuron", width=3, dim=1)
    with pytest.raises(ValueError, match=r"has 3 units on axis dim=1, but the input has 5 there "
                                         r"\(input shape \(2, 5, 3\)\).*dim=1 for \(N, C, L\)"):
        act(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"dim=3 is not an axis of an input of shape \(2, 3\)"):
        GatedActivation(CANDIDATES, gate="neuron", width=3, dim=3)(torch.randn(2, 3))
    fam = get_family("prelu")(width=3, dim=1, granularity="unit")
    with pytest.raises(ValueError, match=r"prelu activation .*has 3 units on axis dim=1, but the input has 4"):
        fam(torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match=r"dim must be an integer axis.*got dim='1'"):
        GatedActivation(CANDIDATES, gate="neuron", width=3, dim="1")  # type: ignore[arg-type]


def test_layer_gates_work_on_any_shape():
    act = GatedActivation(CANDIDATES, dim=1)
    x = torch.randn(2, 3, 4, 5)
    w = torch.softmax(act.logits.detach(), -1)
    want = sum(w[k] * get_candidate(n)(x) for k, n in enumerate(CANDIDATES))
    assert torch.allclose(act(x), want, atol=1e-6)


def test_input_gates_on_a_feature_map_read_each_positions_channel_vector():
    torch.manual_seed(4)
    act = GatedActivation(CANDIDATES, gate="input", width=3, dim=1, gate_hidden=5)
    x = torch.randn(2, 3, 4, 5)
    y, g = act.forward_with_weights(x)
    assert g.shape == (2, 4, 5, 3)
    fns = [get_candidate(n) for n in CANDIDATES]
    want = torch.empty_like(x)
    for n in range(2):
        for i in range(4):
            for j in range(5):
                v = x[n, :, i, j]  # the channel vector at this position
                weights = torch.softmax(act.head(v), dim=-1)
                assert torch.allclose(g[n, i, j], weights, atol=1e-6)
                want[n, :, i, j] = sum(weights[k] * fns[k](v) for k in range(3))
    assert torch.allclose(y, want, atol=1e-6)


def test_input_gates_with_a_per_sample_context_share_weights_over_positions():
    act = GatedActivation(CANDIDATES, gate="input", width=3, context_dim=6, dim=1)
    x, context = torch.randn(2, 3, 7), torch.randn(2, 6)
    y, g = act.forward_with_weights(x, context)
    assert g.shape == (2, 3)
    fns = [get_candidate(n) for n in CANDIDATES]
    want = torch.stack([sum(g[n, k] * fns[k](x[n]) for k in range(3)) for n in range(2)])
    assert torch.allclose(y, want, atol=1e-6)


def test_build_activation_passes_the_axis():
    gated = build_activation(ActivationConfig(kind="gated", gate="neuron"), 3, 3, dim=1)
    fam = build_activation(ActivationConfig(kind="prelu", params={"granularity": "unit"}), 3, None, dim=1)
    assert gated.dim == 1 and fam.dim == 1
    assert gated(torch.randn(2, 3, 4)).shape == fam(torch.randn(2, 3, 4)).shape == (2, 3, 4)
