"""One contract over the registries themselves: every candidate, every family (both granularities), every gate kind.

The cases are read from ``list_candidates()``, ``list_families()`` and ``GateKind`` at collection time, so a newly
registered activation is held to the same contract without editing this file.
"""

import io
import typing

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from learnact.model.activations import FixedActivation, GatedActivation, GateKind, get_candidate, list_candidates
from learnact.model.activations.families import ParametricActivation, get_family, list_families

WIDTH = 5
GRANULARITIES = ("layer", "unit")

CASES = (
    [pytest.param(("candidate", n), id=f"candidate-{n}") for n in list_candidates()]
    + [pytest.param(("family", n, g), id=f"family-{n}-{g}") for n in list_families() for g in GRANULARITIES]
    + [pytest.param(("gate", k), id=f"gate-{k}") for k in typing.get_args(GateKind)]
)
FAMILY_CASES = [pytest.param(n, g, id=f"{n}-{g}") for n in list_families() for g in GRANULARITIES]


def make(case, seed=0):
    """The module of a case; its parameters moved off their initial values (seeded), so no test sees a special point."""
    torch.manual_seed(seed)
    if case[0] == "candidate":
        m = FixedActivation(case[1])
    elif case[0] == "family":
        m = get_family(case[1])(width=WIDTH, granularity=case[2])
    else:
        m = GatedActivation(("relu", "tanh", "sigmoid"), gate=case[1], width=WIDTH, gate_hidden=4)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return m


def test_the_registries_are_not_empty():
    assert len(list_candidates()) >= 10 and len(list_families()) >= 8
    assert set(typing.get_args(GateKind)) == {"layer", "neuron", "input"}


@pytest.mark.parametrize("case", CASES)
def test_shape_and_dtype(case):
    m = make(case)
    x = torch.randn(7, WIDTH)
    y = m(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    y64 = m.double()(x.double())
    assert y64.shape == x.shape and y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), y, rtol=1e-4, atol=1e-4)  # the same function in either precision
    if case[0] != "gate":  # elementwise per unit: any leading axes
        z = m.float()(torch.randn(2, 3, WIDTH))
        assert z.shape == (2, 3, WIDTH)


@pytest.mark.parametrize("case", CASES)
def test_finite_output_and_gradients_at_plus_minus_1e4(case):
    m = make(case)
    x = torch.tensor([[-1e4, 1e4, -1e4, 1e4, -1e4], [1e4, -1e4, 1e4, -1e4, 1e4]], requires_grad=True)
    y = m(x)
    assert torch.isfinite(y).all()
    y.square().mean().backward()  # a non-uniform upstream gradient
    assert torch.isfinite(x.grad).all()
    for name, p in m.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("case", CASES)
def test_float64_gradcheck_in_input_and_parameters(case):
    m = make(case).double()
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in m.named_parameters()]
    x = (torch.rand(3, WIDTH, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 8 - 4)
    x.requires_grad_(True)

    def f(inp, *ps):
        return functional_call(m, dict(zip(names, ps, strict=True)), (inp,))

    assert torch.autograd.gradcheck(f, (x, *params))


@pytest.mark.parametrize("case", CASES)
def test_repr_names_the_activation(case):
    text = repr(make(case))
    if case[0] == "candidate":
        assert repr(case[1]) in text
    elif case[0] == "family":
        assert f"family={case[1]!r}" in text and f"granularity={case[2]!r}" in text
        if case[2] == "unit":
            assert f"width={WIDTH}" in text
    else:
        assert f"gate={case[1]!r}" in text


@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip(case):
    trained = make(case, seed=1)
    fresh = make(case, seed=2)
    x = torch.randn(6, WIDTH)
    if list(trained.parameters()):
        assert not torch.equal(trained(x), fresh(x))
    buf = io.BytesIO()
    torch.save(trained.state_dict(), buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.state_dict().keys() == trained.state_dict().keys()
    assert torch.equal(fresh(x), trained(x))


@pytest.mark.parametrize(("name", "granularity"), FAMILY_CASES)
def test_every_family_is_a_learnable_module_with_its_granularity(name, granularity):
    m = get_family(name)(width=WIDTH, granularity=granularity)
    assert isinstance(m, ParametricActivation) and m.family == name and m.granularity == granularity
    params = dict(m.named_parameters())
    assert params, "a learnable family must have parameters"
    if granularity == "unit":  # one set per unit: the unit axis leads every parameter
        assert all(p.shape[0] == WIDTH for p in params.values()), {k: tuple(p.shape) for k, p in params.items()}
    m(torch.randn(4, WIDTH)).sum().backward()
    assert all(p.grad is not None for p in params.values())


@pytest.mark.parametrize(("name", "granularity"), FAMILY_CASES)
def test_initial_shape_within_its_stated_tolerance_on_minus3_3(name, granularity):
    m = get_family(name)(width=WIDTH, granularity=granularity)
    claim = m.starts_near()
    if claim is None:
        pytest.skip(f"{name} makes no claim about its initial shape")
    x = torch.linspace(-3, 3, 1201)
    err = (m.curves(x) - claim.function(x).unsqueeze(-1)).abs().max()
    assert err <= claim.tolerance, f"{name} starts {float(err):.3g} from {claim.name}, claims {claim.tolerance}"


@pytest.mark.parametrize("init", list_candidates())
def test_spline_starts_near_each_candidate_it_claims(init):
    m = get_family("spline")(width=3, init=init)
    claim = m.starts_near()
    assert claim is not None, f"the spline states no tolerance for init={init!r}"
    x = torch.linspace(-3, 3, 1201)
    err = (m.curves(x) - get_candidate(init)(x).unsqueeze(-1)).abs().max()
    assert err <= claim.tolerance


def test_the_spline_claims_the_inits_the_brief_names():
    for init, tol in [("silu", 1e-6), ("identity", 0.005), ("tanh", 0.01), ("relu", 0.14)]:
        assert get_family("spline")(width=1, init=init).starts_near().tolerance == tol


def _stack(modules):
    named = [{**dict(m.named_parameters()), **dict(m.named_buffers())} for m in modules]
    return {k: torch.stack([n[k].detach() for n in named]).requires_grad_(named[0][k].requires_grad)
            for k in named[0]}


@pytest.mark.parametrize(("name", "granularity"), FAMILY_CASES)
def test_vmap_of_functional_call_over_three_members_equals_three_calls(name, granularity):
    """What a stacked engine does: one module, parameters with a member axis, forward and backward."""
    members = [make(("family", name, granularity), seed=s) for s in range(3)]
    xs = torch.randn(3, 8, WIDTH, generator=torch.Generator().manual_seed(4)) * 2
    stacked = _stack(members)
    template = members[0]

    def member_loss(p, x):
        return functional_call(template, p, (x,)).square().mean()

    out = vmap(lambda p, x: functional_call(template, p, (x,)))(stacked, xs)
    for i, m in enumerate(members):
        torch.testing.assert_close(out[i], m(xs[i]))
    grads = vmap(grad(member_loss))({k: v.detach() for k, v in stacked.items()}, xs)
    for i, m in enumerate(members):
        m.zero_grad()
        member_loss(dict(m.named_parameters()) | dict(m.named_buffers()), xs[i]).backward()
        for k, p in m.named_parameters():
            torch.testing.assert_close(grads[k][i], p.grad, msg=f"{name} {granularity} gradient of {k}")


def test_vmap_members_with_different_parameters_give_different_outputs():
    """Guards the vmap test above: the stacked members really differ."""
    for name in list_families():
        x = torch.tensor([[-1.0, 0.5, -2.0, 1.5, -0.3]])
        outs = [make(("family", name, "unit"), seed=s)(x) for s in range(2)]
        assert not torch.equal(outs[0], outs[1]), name


def test_module_contract_cases_cover_nn_modules():
    assert all(isinstance(make(c.values[0]), nn.Module) for c in CASES)
