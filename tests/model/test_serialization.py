"""state_dict checks, pickling by candidate name, torch.jit.trace, torch.compile and torch.export."""

import copy
import io
import pickle

import pytest
import torch
from safetensors.torch import load, save

from learnact.config import ActivationConfig
from learnact.model import MLP, FrozenMixture, GatedActivation, freeze, get_family, list_families, register_candidate
from learnact.model.activations import FixedActivation
from learnact.model.activations.candidates import list_candidates
from learnact.model.state import tensor_state


# a user candidate that is a lambda: unpicklable itself, so modules must pickle by its name
@pytest.fixture
def cubic() -> str:
    """A lambda candidate, registered for one test (the conftest fixture removes it afterwards)."""
    if "test_serialization_cubic" not in list_candidates():
        register_candidate("test_serialization_cubic", lambda x: x * x * x / 6)
    return "test_serialization_cubic"


def test_a_mismatched_candidate_state_is_refused_naming_both_lists():
    a = GatedActivation(("relu", "tanh"))
    b = GatedActivation(("sin", "gelu"))
    with pytest.raises(ValueError, match=r"candidates \['relu', 'tanh'\], but the module mixes \['sin', 'gelu'\]"):
        b.load_state_dict(a.state_dict())
    frozen = freeze(torch.nn.Sequential(GatedActivation(("relu", "tanh"), gate="neuron", width=2)), "blend")
    other = FrozenMixture(("sin", "gelu"), torch.full((2, 2), 0.5))
    with pytest.raises(ValueError, match=r"but the module mixes \['sin', 'gelu'\]"):
        other.load_state_dict(frozen[0].state_dict())


def test_a_state_saved_from_another_family_or_other_parameters_is_refused():
    rational = get_family("rational")(num_degree=3, den_degree=2)
    other = get_family("rational")(num_degree=3, den_degree=2)
    other.load_state_dict(rational.state_dict())  # the same family and parameters load
    pwl = get_family("pwl")(segments=4)
    pwl_other = get_family("pwl")(segments=4, lo=-2.0)
    with pytest.raises(ValueError, match=r"saved from family 'pwl' with parameters .*'lo': -3.0.*'lo': -2.0"):
        pwl_other.load_state_dict(pwl.state_dict())


def test_saved_state_round_trips_through_torch_save_with_its_names():
    model = MLP(3, (4,), 1, ActivationConfig(gate="neuron", candidates=("relu", "sin")))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["blocks.0.activation._extra_state"] == {"candidates": ["relu", "sin"]}
    twin = MLP(3, (4,), 1, ActivationConfig(gate="neuron", candidates=("relu", "sin")))
    twin.load_state_dict(state)
    wrong = MLP(3, (4,), 1, ActivationConfig(gate="neuron", candidates=("sin", "relu")))
    with pytest.raises(ValueError, match=r"candidates \['relu', 'sin'\], but the module mixes \['sin', 'relu'\]"):
        wrong.load_state_dict(state)


def test_tensor_only_states_keep_loading_and_weight_files_keep_their_bytes():
    torch.manual_seed(0)
    model = MLP(3, (4,), 1, ActivationConfig(gate="neuron"))
    tensors = tensor_state(model)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    assert set(model.state_dict()) - set(tensors) == {"blocks.0.activation._extra_state"}
    blob = save(tensors)  # safetensors takes tensors only
    fresh = MLP(3, (4,), 1, ActivationConfig(gate="neuron"))
    fresh.load_state_dict(load(blob))  # a file without extra state (as written before it existed) loads
    x = torch.randn(5, 3)
    assert torch.equal(fresh(x), model(x))
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*blocks.0.linear.weight"):
        fresh.load_state_dict({k: v for k, v in tensors.items() if k != "blocks.0.linear.weight"})


@pytest.mark.parametrize("gate", ["layer", "neuron", "input"])
def test_a_module_with_a_registered_lambda_candidate_pickles_and_deep_copies(gate, cubic):
    torch.manual_seed(1)
    act = GatedActivation(("relu", cubic), gate=gate, width=3)
    x = torch.randn(4, 3)
    y = act(x)  # an input gate now holds its last weights (part of a graph): not pickled
    for clone in (pickle.loads(pickle.dumps(act)), copy.deepcopy(act)):
        assert clone.candidates == act.candidates and clone.functions[1] is act.functions[1]
        assert torch.equal(clone(x), y)
        assert all(p is not q for p, q in zip(clone.parameters(), act.parameters(), strict=True))


def test_a_frozen_mixture_pickles_by_name(cubic):
    frozen = FrozenMixture(("relu", cubic), torch.tensor([0.3, 0.7]))
    x = torch.randn(6)
    assert torch.equal(pickle.loads(pickle.dumps(frozen))(x), frozen(x))


def test_a_fixed_activation_of_a_registered_lambda_pickles_by_name(cubic):
    # it held the function itself: "Can't pickle <function <lambda>>", and freeze(model, "argmax") could turn a
    # model that pickled into one that did not
    fixed = FixedActivation(cubic)
    x = torch.randn(5)
    for clone in (pickle.loads(pickle.dumps(fixed)), copy.deepcopy(fixed)):
        assert clone.name == cubic and clone.fn is fixed.fn and torch.equal(clone(x), fixed(x))
    gated = GatedActivation((cubic, "relu"))
    with torch.no_grad():
        gated.logits.copy_(torch.tensor([2.0, 0.0]))
    frozen = freeze(torch.nn.Sequential(torch.nn.Linear(2, 5), gated), "argmax")
    assert isinstance(frozen[1], FixedActivation)
    assert torch.equal(pickle.loads(pickle.dumps(frozen))(x[:2]), frozen(x[:2]))


@pytest.mark.parametrize("family", list_families())
def test_every_family_with_a_registered_lambda_candidate_as_a_parameter_pickles_by_name(family, cubic):
    # the family parameters that name a candidate (the spline's base and init), each set to the lambda one
    params = {name: cubic for name, field in get_family(family).Params.model_fields.items()
              if isinstance(field.default, str) and field.default in list_candidates()}
    module = get_family(family)(width=3, **params)
    x = torch.randn(4, 3)
    for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        assert clone.hparams == module.hparams and torch.equal(clone(x), module(x))


def test_jit_script_is_unsupported_and_jit_trace_equals_eager():
    """Candidates are arbitrary Python callables (a user's lambda), which TorchScript cannot compile."""
    act = GatedActivation(("relu", "tanh"), gate="neuron", width=3, dim=1)
    with torch.no_grad():
        act.logits.copy_(torch.randn(3, 2))
    with pytest.raises(Exception):  # noqa: B017 - TorchScript raises its own frontend errors
        torch.jit.script(act)
    x = torch.randn(2, 3, 5)
    traced = torch.jit.trace(act, (x,))
    other = torch.randn(4, 3, 7)
    assert torch.equal(traced(other), act(other))


@pytest.mark.slow  # inductor compiles C++ on the CPU: ~45 s cold
def test_torch_compile_fullgraph_equals_eager_for_every_gate_kind_and_a_family():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4)
    modules = [GatedActivation(("relu", "tanh")), GatedActivation(("relu", "tanh"), gate="neuron", width=3, dim=1),
               GatedActivation(("relu", "tanh"), gate="input", width=3, dim=1),
               get_family("prelu")(width=3, dim=1, granularity="unit")]
    with torch.no_grad():
        modules[1].logits.copy_(torch.randn(3, 2))
        modules[3].slope.copy_(torch.tensor([0.1, 0.2, 0.3]))
    for m in modules:
        compiled = torch.compile(m, fullgraph=True)
        # tolerance: inductor may fuse and reorder the float32 sums (a few ulp)
        torch.testing.assert_close(compiled(x), m(x), rtol=1e-5, atol=1e-6)


def _export_cases() -> list[ActivationConfig]:
    """Every gate kind and every learnable family, from their registries."""
    from typing import get_args

    from learnact.model import list_families
    from learnact.model.activations import GateKind

    return ([ActivationConfig(kind="gated", gate=g, candidates=("relu", "tanh", "sigmoid")) for g in get_args(GateKind)]
            + [ActivationConfig(kind=f) for f in list_families()])


@pytest.mark.parametrize("config", _export_cases(), ids=lambda c: c.gate if c.kind == "gated" else c.kind)
def test_torch_export_of_a_converted_model_equals_eager_at_any_batch_size_after_save_and_load(config, recwarn):
    """A CNN's ReLU and Tanh replaced: exported with a dynamic batch, saved, loaded, run on another batch size."""
    from learnact.model import convert

    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(3 * 4 * 4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    model, replaced = convert(cnn, config, sample_input=torch.randn(2, 2, 4, 4))
    assert len(replaced) == 2
    model.eval()
    program = torch.export.export(model, (torch.randn(3, 2, 4, 4),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    buf.seek(0)
    loaded = torch.export.load(buf).module()
    for batch in (1, 7):
        x = torch.randn(batch, 2, 4, 4)
        assert torch.equal(loaded(x), model(x))
    # nothing to fix on the user's side: an input gate keeps its last weights only outside the export
    assert not [w for w in recwarn if "register_buffer" in str(w.message)], [str(w.message) for w in recwarn]
