import math

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

FAMILIES = ["kernel", "maxout", "neural", "prelu", "pwl", "rational", "swish"]


def test_all_surveyed_families_are_registered():
    assert list_families() == FAMILIES


@pytest.mark.parametrize("name", FAMILIES)
def test_family_contract(name):
    torch.manual_seed(0)
    m = get_family(name)().double()
    x = torch.tensor([[-5.0, -1.3, -0.4, 0.35, 1.7, 2.9, 6.0]], dtype=torch.float64, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape and y.dtype == torch.float64
    assert torch.isfinite(m(torch.tensor([[-1e4, 1e4]], dtype=torch.float64))).all()
    assert torch.autograd.gradcheck(lambda inp: m(inp), (x,))
    params = list(m.parameters())
    assert params, "a learnable family must have parameters"
    y.sum().backward()
    assert all(p.grad is not None for p in params)
    assert f"family={name!r}" in repr(m)


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


def test_initial_shapes_approximate_their_targets():
    x = torch.linspace(-3, 3, 61)
    leaky = torch.where(x > 0, x, 0.01 * x)
    assert (get_family("rational")()(x) - leaky).abs().max() < 0.07
    elu = torch.nn.functional.elu(x)
    assert (get_family("kernel")()(x) - elu).abs().max() < 0.15
    assert torch.allclose(get_family("pwl")()(x), torch.relu(x), atol=1e-6)
    assert torch.allclose(get_family("maxout")()(x), torch.relu(x))


def test_unknown_family_lists_valid():
    with pytest.raises(ValueError, match=r"unknown activation family 'prelux' \(did you mean 'prelu'\?\)"):
        get_family("prelux")


@pytest.mark.parametrize("name", FAMILIES)
def test_families_train_inside_the_backbone(name):
    torch.manual_seed(1)
    X = torch.randn(64, 4)
    y = (X[:, 0] * X[:, 1] > 0).float().reshape(-1, 1)
    m = MLP(4, (16,), 1, "relu")
    m.blocks[0].activation = get_family(name)()
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
        own = sum(p.numel() for p in get_family(name)().parameters())
        assert n_params[name] == base + 2 * own


def test_vectorized_engine_trains_families_like_the_reference(tmp_path):
    from learnact.evaluation.aggregate import runs_table
    from learnact.experiment import run_study, study_from_dict

    study = study_from_dict({"name": "fam", "seeds": [1, 2], "train": {"max_epochs": 4},
                             "variants": [{"name": "f_{kind}", "kind": ["prelu", "neural", "gated", "fixed"]}]})
    tables = {}
    for engine in ("sequential", "vectorized"):
        run_study(study, tmp_path / engine, engine=engine)
        tables[engine] = runs_table(tmp_path / engine).set_index("run_id").sort_index()
    cols = ["accuracy", "f1", "roc_auc", "log_loss", "best_epoch", "epochs_run"]
    assert len(tables["sequential"]) == 8
    assert tables["sequential"][cols].equals(tables["vectorized"][cols])
