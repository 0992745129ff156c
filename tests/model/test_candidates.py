import re

import pytest
import torch

from learnact.model.activations import candidate_derivative, get_candidate, list_candidates, register_candidate

REQUIRED = {"relu", "tanh", "sigmoid", "gelu", "silu", "elu", "softplus", "leaky_relu", "identity", "sin"}


def test_registry_has_required_candidates():
    assert REQUIRED <= set(list_candidates())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_candidate_contract(name):
    fn = get_candidate(name)
    x = torch.linspace(-6, 6, 97).reshape(1, 97).repeat(4, 1)
    y = fn(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    extreme = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4])
    assert torch.isfinite(fn(extreme)).all()
    # float64 gradient check, away from the kink of piecewise-linear candidates
    xd = torch.tensor([-1.3, -0.4, 0.35, 1.7, 2.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (xd,))
    assert fn(xd).dtype == torch.float64


def test_candidate_values_match_torch_reference():
    x = torch.linspace(-3, 3, 11)
    assert torch.allclose(get_candidate("relu")(x), torch.clamp(x, min=0))
    assert torch.allclose(get_candidate("sigmoid")(x), 1 / (1 + torch.exp(-x)))
    assert torch.allclose(get_candidate("sin")(x), torch.sin(x))
    assert torch.allclose(get_candidate("leaky_relu")(x), torch.where(x > 0, x, 0.01 * x))


def test_unknown_candidate_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'tahn' \(did you mean 'tanh'\?\); valid: .*relu"):
        get_candidate("tahn")


def test_register_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_candidate("relu", torch.relu)


WITH_DERIVATIVE = sorted(n for n in list_candidates() if candidate_derivative(get_candidate(n)) is not None)


def test_most_built_in_candidates_register_their_derivative():
    assert set(WITH_DERIVATIVE) >= REQUIRED - {"elu"}
    assert candidate_derivative(get_candidate("elu")) is None  # differentiated by autograd instead


@pytest.mark.parametrize("name", WITH_DERIVATIVE)
@pytest.mark.parametrize("shape", [(7,), (4, 64, 32), (3, 21, 50)])
def test_registered_derivative_is_autograds_bit_for_bit(name, shape):
    """A registered derivative must be exactly autograd's: the stacked engine's reference mode relies on it."""
    fn = get_candidate(name)
    derivative = candidate_derivative(fn)
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(shape, generator=gen) * 4).requires_grad_(True)
    g = torch.randn(shape, generator=gen)
    y = fn(x)
    (expected,) = torch.autograd.grad(y, x, g)
    with torch.no_grad():
        got = derivative(g, x.detach(), fn(x.detach()))
    assert torch.equal(got, expected)


def test_derivative_must_be_callable():
    with pytest.raises(TypeError, match="derivative of candidate 'x2' must be callable"):
        register_candidate("x2", lambda t: t * 2, derivative=3)  # type: ignore[arg-type]
    assert "x2" not in list_candidates()


@pytest.mark.parametrize(("fn", "expected"), [
    (lambda x: x.sum(-1, keepdim=True), "returned shape (2, 1), dtype float32"),
    (lambda x: torch.tanh(x).double(), "returned shape (2, 3), dtype float64"),
    (lambda x: x - x.mean(-1, keepdim=True), "its value at one element depends on the others"),
])
def test_register_candidate_refuses_what_is_not_elementwise(fn, expected):
    """Such a candidate had been registered, passed the study's checks, and failed every run as an internal error
    ('Sizes of tensors must match', 'Input dtypes must be the same')."""
    from learnact.model.activations.candidates import register_candidate

    with pytest.raises(ValueError, match=re.escape(expected)) as caught:
        register_candidate("not_elementwise", fn)
    assert "register an elementwise function" in str(caught.value)
    from learnact import list_candidates

    assert "not_elementwise" not in list_candidates()


def test_the_mlp_takes_names_of_candidates_and_families_and_names_a_bad_one():
    """A typo had raised pydantic's four-line error, a family's name ('spline', which convert takes) was refused,
    hidden=8 was a TypeError, and a wrong input width surfaced as torch's 'mat1 and mat2 shapes'."""
    import learnact

    with pytest.raises(ValueError, match=r"^activation 'rleu': unknown activation 'rleu' \(did you mean 'relu'\?\)"):
        learnact.MLP(5, [8], 1, "rleu")
    spline = learnact.MLP(5, [8], 1, "spline")
    assert type(spline.activations[0]).__name__ == "Spline" and spline.activations[0].width == 8
    assert learnact.MLP(5, 8, 1, "relu").hidden == (8,)
    with pytest.raises(ValueError, match=re.escape("the MLP takes a tensor of shape (batch, 5), got shape (2, 4)")):
        learnact.MLP(5, [8], 1, "relu")(torch.randn(2, 4))
