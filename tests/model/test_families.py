import math

import numpy as np
import pytest
import torch

from learnact.model import MLP, init_parameters_
from learnact.model.activations.families import (
    get_family,
    kernel_activation,
    list_families,
    maxout,
    prelu,
    pwl,
    rational,
    swish,
)
from learnact.model.state import tensor_state

FAMILIES = ["kernel", "maxout", "neural", "prelu", "pwl", "rational", "spline", "swish"]


def test_all_surveyed_families_are_registered():
    assert list_families() == FAMILIES


def test_a_rational_without_denominator_is_its_least_squares_polynomial():
    """``den_degree=0`` (documented: a polynomial) builds (numpy's stack of no powers failed before), and its
    initial numerator is numpy's own least-squares polynomial fit to leaky ReLU on [-3, 3]."""
    module = get_family("rational")(width=4, num_degree=3, den_degree=0)
    assert module.denominator.shape == (0,)
    x = np.linspace(-3, 3, 2001)
    fit = np.polynomial.polynomial.polyfit(x, np.where(x > 0, x, 0.01 * x), 3)
    np.testing.assert_allclose(module.numerator.detach().double().numpy(), fit, rtol=1e-5, atol=1e-6)
    z = torch.linspace(-3, 3, 7)
    want = sum(float(c) * z**j for j, c in enumerate(module.numerator.detach()))
    assert torch.allclose(module(z.unsqueeze(-1).expand(7, 4))[:, 0], want, atol=1e-5)


def test_functional_forms_match_definitions():
    x = torch.linspace(-3, 3, 13)
    assert torch.allclose(prelu(x, torch.tensor(0.2)), torch.where(x > 0, x, 0.2 * x))
    assert torch.allclose(swish(x, torch.tensor(1.0)), torch.nn.functional.silu(x))
    # rational: (1 + 2x) / (1 + |x^2|)
    assert torch.allclose(rational(x, torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])), (1 + 2 * x) / (1 + x**2))
    # pwl through relu knots is relu, also beyond the knots
    knots = torch.relu(torch.linspace(-2, 2, 5))
    xx = torch.linspace(-4, 4, 17)
    assert torch.allclose(pwl(xx, knots, -2.0, 2.0), torch.relu(xx), atol=1e-6)
    assert torch.allclose(maxout(x, torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0])), torch.relu(x))
    d = torch.linspace(-1, 1, 3)
    alpha = torch.tensor([1.0, 0.0, 2.0])
    want = math.exp(-2.0 * (0.5 + 1) ** 2) + 2 * math.exp(-2.0 * (0.5 - 1) ** 2)
    got = kernel_activation(torch.tensor([0.5]), alpha, d, 2.0, torch.tensor([0.0, 1.0]))
    assert math.isclose(float(got), float(want), rel_tol=1e-6)


def test_unknown_family_lists_valid():
    with pytest.raises(ValueError, match=r"unknown activation family 'prelux' \(did you mean 'prelu'\?\)"):
        get_family("prelux")


@pytest.mark.parametrize("name", FAMILIES)
def test_families_train_inside_the_backbone(name):
    torch.manual_seed(1)
    X = torch.randn(64, 4)
    y = (X[:, 0] * X[:, 1] > 0).float().reshape(-1, 1)
    m = MLP(4, (16,), 1, "relu")
    m.blocks[0].activation = get_family(name)(width=16)
    init_parameters_(m, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(m(X), y)
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < first


def test_families_are_chosen_by_kind_in_a_study(tmp_path):
    from learnact import store
    from learnact.config import ActivationConfig
    from learnact.experiment import run_study, study_from_dict
    from learnact.model import count_parameters

    with pytest.raises(ValueError, match=r"got 'prelux' \(did you mean 'prelu'\?\)"):
        ActivationConfig(kind="prelux")
    study = study_from_dict({"name": "fam", "seeds": [1], "train": {"max_epochs": 3},
                             "variants": [{"name": "f_{kind}", "kind": FAMILIES}]})
    run_study(study, tmp_path / "s", engine="sequential")
    runs = store.finished_runs(tmp_path / "s")
    assert len(runs) == len(FAMILIES)
    n_params = {store.read_run_config(r).activation.kind: store.read_metrics(r)["n_params"] for r in runs}
    base = count_parameters(MLP(30, (64, 32), 1, "relu"))
    for name in FAMILIES:
        own = sum(p.numel() for w in (64, 32) for p in get_family(name)(width=w).parameters())
        assert n_params[name] == base + own
    # layer granularity: one set per layer; the spline defaults to one set per unit (8 coefficients + 2 weights)
    assert n_params["prelu"] == base + 2 and n_params["spline"] == base + 10 * (64 + 32)


def test_vectorized_engine_trains_families_like_the_reference(tmp_path):
    from learnact.evaluation import per_run, tidy_results
    from learnact.experiment import run_study, study_from_dict

    study = study_from_dict({"name": "fam", "seeds": [1, 2], "train": {"max_epochs": 4},
                             "variants": [{"name": "f_{kind}", "kind": ["prelu", "neural", "gated", "fixed"]}]})
    tables = {}
    for engine in ("sequential", "vectorized"):
        run_study(study, tmp_path / engine, engine=engine)
        tables[engine] = per_run(tidy_results(tmp_path / engine)).set_index("run_id").sort_index()
    cols = ["accuracy", "f1", "roc_auc", "log_loss", "best_epoch", "epochs_run"]
    assert len(tables["sequential"]) == 8
    assert tables["sequential"][cols].equals(tables["vectorized"][cols])


# --- granularity -------------------------------------------------------------------------------------------------


def _perturbed(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return module


def _unit_slice(name, state, j):
    """Unit ``j``'s parameters of a per-unit family, in the per-layer module's names and shapes."""
    if name == "neural":
        return {"inner.weight": state["inner_weight"][j].unsqueeze(-1), "inner.bias": state["inner_bias"][j],
                "outer.weight": state["outer_weight"][j].unsqueeze(0), "outer.bias": state["outer_bias"][j].reshape(1)}
    return {k: v if k in ("dictionary", "knots") else v[j] for k, v in state.items()}


@pytest.mark.parametrize("name", FAMILIES)
def test_a_per_unit_family_applies_each_units_own_per_layer_function(name):
    torch.manual_seed(0)
    width = 4
    unit = _perturbed(get_family(name)(width=width, granularity="unit"), seed=1)
    x = torch.randn(9, width) * 2
    y = unit(x)
    columns = []
    for j in range(width):
        layer = get_family(name)(granularity="layer")
        layer.load_state_dict(_unit_slice(name, tensor_state(unit), j))
        columns.append(layer(x[:, j]))
    torch.testing.assert_close(y, torch.stack(columns, dim=1))
    assert not torch.allclose(y[:, 0], get_family(name)(granularity="layer")(x[:, 0]))  # the units were moved


def test_per_unit_prelu_is_torchs_prelu_with_num_parameters():
    ours = get_family("prelu")(width=6, granularity="unit")
    theirs = torch.nn.PReLU(num_parameters=6)
    with torch.no_grad():
        ours.slope.copy_(torch.linspace(-0.5, 0.8, 6))
        theirs.weight.copy_(ours.slope)
    x = torch.randn(10, 6)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    assert tuple(ours.slope.shape) == (6,)


def test_a_per_unit_family_needs_its_width_and_checks_the_input():
    with pytest.raises(ValueError, match=r"spline with granularity='unit' needs width .*got width=None"):
        get_family("spline")()
    m = get_family("prelu")(width=3, granularity="unit")
    with pytest.raises(ValueError, match=r"prelu activation .*has 3 units on axis dim=-1, but the input has 5 there"):
        m(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"invalid pwl parameters: segments: must be in \[1, 1024\], got 0"):
        get_family("pwl")(segments=0)
    with pytest.raises(ValueError, match=r"invalid maxout parameters: grid_size: unknown key"):
        get_family("maxout")(grid_size=3)


def test_neural_per_unit_draws_like_nn_linear_from_the_runs_generator():
    def model(seed):
        torch.manual_seed(seed)  # the global stream must not matter after init_parameters_
        from learnact.config import ActivationConfig

        act = ActivationConfig(kind="neural", params={"granularity": "unit", "hidden": 5})
        return init_parameters_(MLP(3, (7,), 1, act), torch.Generator().manual_seed(11))

    a, b = model(1), model(2)
    for k, v in tensor_state(a).items():
        assert torch.equal(v, tensor_state(b)[k]), k
    act = a.activations[0]
    assert len({tuple(r.tolist()) for r in act.inner_weight}) == 7  # each unit its own draw
    assert act.inner_weight.abs().max() <= 1 and act.outer_weight.abs().max() <= 1 / math.sqrt(5)
    # building under torch.manual_seed(s) gives what init_parameters_ with a generator seeded s gives
    torch.manual_seed(11)
    from learnact.config import ActivationConfig

    built = MLP(3, (7,), 1, ActivationConfig(kind="neural", params={"granularity": "unit", "hidden": 5}))
    for k, v in tensor_state(built).items():
        assert torch.equal(v, tensor_state(a)[k]), k


def test_neural_per_layer_is_the_pure_function():
    from learnact.model.activations.families import neural

    m = get_family("neural")()
    x = torch.randn(4, 3)
    want = neural(x, m.inner.weight[:, 0], m.inner.bias, m.outer.weight[0], m.outer.bias[0])
    torch.testing.assert_close(m(x), want)


# --- the B-spline family -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("order", "grid_size"), [(1, 3), (2, 4), (3, 5), (4, 7)])
def test_spline_matches_scipys_b_splines(order, grid_size):
    from scipy.interpolate import BSpline

    m = _perturbed(get_family("spline")(width=3, order=order, grid_size=grid_size, init="tanh"), seed=2).double()
    # the knots are equally spaced from the first to the last (stored in float32: that grid, not its rounding)
    knots = np.linspace(m.knots[0].item(), m.knots[-1].item(), len(m.knots))
    assert len(knots) == grid_size + 2 * order + 1 and m.coefficients.shape == (3, grid_size + order)
    h = 6 / grid_size
    assert knots[0] == pytest.approx(-3 - order * h) and knots[order] == pytest.approx(-3)
    x = torch.linspace(-3 - (order + 1) * h, 3 + (order + 1) * h, 997, dtype=torch.float64)
    y = m(x.unsqueeze(-1).expand(-1, 3)).detach().numpy()
    xs = x.numpy()
    for j in range(3):
        c = m.coefficients[j].detach().numpy()
        s = np.zeros_like(xs)
        for i in range(len(c)):
            b = BSpline.basis_element(knots[i : i + order + 2], extrapolate=False)(xs)
            s += c[i] * np.nan_to_num(b)
        want = m.base_weight[j].item() * torch.nn.functional.silu(x).numpy() + m.spline_weight[j].item() * s
        np.testing.assert_allclose(y[:, j], want, rtol=1e-9, atol=1e-9)


def test_spline_bases_sum_to_one_on_the_grid_range():
    from learnact.model.activations.families import bspline_basis

    m = get_family("spline")(width=1, order=3, grid_size=6, lo=-2.0, hi=4.0)
    x = torch.linspace(-2, 4, 301)
    basis = bspline_basis(x, m.knots, 3)
    assert basis.shape == (301, 9) and (basis >= 0).all()
    torch.testing.assert_close(basis.sum(-1), torch.ones(301))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("grid_size", [1, 5, 8])
def test_the_local_evaluation_equals_the_full_cox_de_boor_sum(order, grid_size):
    """spline() sums the order + 1 B-splines non-zero at x; the full basis of bspline_basis gives the same."""
    from learnact.model.activations.candidates import get_candidate
    from learnact.model.activations.families import _spline_knots, bspline_basis, local_bsplines, spline

    knots = _spline_knots(order, grid_size, -2.0, 3.0, torch.float64)
    c = torch.randn(4, grid_size + order, dtype=torch.float64, generator=torch.Generator().manual_seed(order))
    lo, hi = knots[0].item() - 2.0, knots[-1].item() + 2.0  # beyond the extended grid on both sides
    x = torch.linspace(lo, hi, 20001, dtype=torch.float64).unsqueeze(-1).expand(-1, 4)
    zero, one = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    got = spline(x, c, knots, order, zero, one, get_candidate("silu"))
    want = (bspline_basis(x, knots, order) * c).sum(-1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    start, values = local_bsplines(x[:, 0], knots, order)
    inside = (x[:, 0] >= knots[0]) & (x[:, 0] < knots[-1])
    torch.testing.assert_close(sum(values)[inside], torch.full((int(inside.sum()),), float(math.factorial(order)),
                                                               dtype=torch.float64))  # a partition of unity
    assert set(start[~inside].tolist()) == {0, len(knots)}  # windows into the zero padding
    nan = spline(torch.tensor([float("nan")]), c[0], knots, order, one[0], one[0], get_candidate("silu"))
    assert nan.isnan().all()  # NaN stays NaN (never an out-of-range index)


@pytest.mark.parametrize("granularity", ["layer", "unit"])
def test_spline_gathers_its_coefficients_as_advanced_indexing_does_bit_for_bit(granularity):
    """spline() reads each point's order + 1 coefficients with index_select; the formulation it replaced
    (advanced indexing, whose backward is index_put_ with accumulate) gives the same output and the same
    gradients bit for bit, so results trained before the change stay reproducible."""
    import torch.nn.functional as F

    from learnact.model.activations.families import local_bsplines

    m = _perturbed(get_family("spline")(width=6, granularity=granularity), seed=11)
    order = m.order

    def indexed(x, coefficients, base_weight, spline_weight):  # the earlier formulation, verbatim
        start, values = local_bsplines(x, m.knots, order)
        padded = F.pad(coefficients * (1.0 / math.factorial(order)), (order + 1, order + 1))
        width = padded.shape[-1]
        rows = torch.arange(0, padded[..., 0].numel() * width, width).view(padded.shape[:-1])
        window = padded.reshape(-1)[(rows + start).unsqueeze(-1) + torch.arange(order + 1)]
        picked = window.unbind(-1)
        total = values[0] * picked[0]
        for value, c in zip(values[1:], picked[1:], strict=True):
            total = total + value * c
        return base_weight * m.base(x) + spline_weight * total

    x = 4 * torch.randn(97, 6, generator=torch.Generator().manual_seed(5))  # inside, near and beyond the grid
    grad = torch.randn(97, 6, generator=torch.Generator().manual_seed(6))
    params = [m.coefficients, m.base_weight, m.spline_weight]
    got = m(x.requires_grad_(True))
    got_grads = torch.autograd.grad(got, [x, *params], grad)
    want = indexed(x, *params)
    want_grads = torch.autograd.grad(want, [x, *params], grad)
    assert torch.equal(got, want)
    for a, b in zip(got_grads, want_grads, strict=True):
        assert torch.equal(a, b)


def test_outside_the_grid_the_base_carries_the_input():
    m = _perturbed(get_family("spline")(width=2, init="relu"), seed=3)  # grid [-3, 3], h = 1.2, k = 3: knots to 6.6
    far = torch.tensor([[-1e4, -50.0], [-6.61, 6.6], [7.0, 1e4]], requires_grad=True)
    y = m(far)
    base = m.base_weight * torch.nn.functional.silu(far)
    assert torch.equal(y, base)  # beyond the extended grid: exactly w_b * base(x)
    y.sum().backward()
    assert torch.equal(m.coefficients.grad, torch.zeros_like(m.coefficients))
    assert torch.equal(m.spline_weight.grad, torch.zeros(2))
    # between hi and hi + k h the spline fades out continuously
    ramp = torch.linspace(3.0, 6.6, 361).unsqueeze(-1).expand(-1, 2)
    spline_part = (m(ramp) - m.base_weight * torch.nn.functional.silu(ramp)).detach()
    assert spline_part[0].abs().min() > 0.01 and spline_part[-1].abs().max() < 1e-5
    assert spline_part.diff(dim=0).abs().max() < 0.05  # no jump on the way


def test_spline_granularity_order_and_grid_come_from_the_config():
    from learnact.config import ActivationConfig

    act = ActivationConfig(kind="spline", params={"granularity": "layer", "order": 2, "grid_size": 9})
    m = MLP(4, (6, 5), 1, act).activations
    assert all(a.coefficients.shape == (11,) and a.granularity == "layer" for a in m)
    per_unit = MLP(4, (6, 5), 1, ActivationConfig(kind="spline")).activations
    assert [tuple(a.coefficients.shape) for a in per_unit] == [(6, 8), (5, 8)]


def test_spline_trains_toward_a_target_shape():
    """Fitting a sine with the spline alone: the loss falls by a factor, the learned shape follows the target."""
    m = get_family("spline")(granularity="layer", grid_size=8)
    x = torch.linspace(-3, 3, 200)
    target = torch.sin(2 * x)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    first = float(((m(x) - target) ** 2).mean().detach())
    for _ in range(300):
        opt.zero_grad()
        loss = ((m(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first / 20
