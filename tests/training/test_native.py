"""The native (C++) step against the Python step it mirrors, bit for bit.

The Python step is itself checked against the reference trainer
(``test_vectorized.py``); here every gate kind, the entropy term, compaction,
the fused kernels on and off, and the fallbacks.
"""

from __future__ import annotations

import json

import pytest
import torch

from learnact.config import ActivationConfig
from learnact.experiment import prepare_splits, study_from_dict
from learnact.experiment.engines import build_model, split_key
from learnact.model import MLP, init_parameters_
from learnact.model.activations import candidate_derivative, get_candidate, list_candidates, register_candidate
from learnact.training import native, run_generator
from learnact.training.stacked import StackedMLP
from learnact.training.vectorized import _adam_step_, fit_stacked


@pytest.fixture(scope="module", autouse=True)
def native_step():
    if not native.load():
        pytest.skip("the native step could not be built here (no C++ compiler?); the Python step is used")
    yield
    native.set_fused(True)


def _runs():
    study = study_from_dict({
        "name": "native",
        "seeds": [1, 7],
        "train": {"max_epochs": 9, "patience": 2, "lr": 0.03},
        "variants": [
            {"name": "fixed_{activation}", "kind": "fixed", "activation": ["tanh", "relu", "sigmoid"]},
            {"name": "layer_lam{entropy_weight}", "gate": "layer", "temperature": 0.7, "entropy_weight": [0.0, 0.01]},
            {"name": "neuron", "gate": "neuron", "temperature": 0.5, "entropy_weight": 0.02,
             "candidates": ["sigmoid", "identity", "relu", "tanh"]},
            {"name": "input_{gate_source}", "gate": "input", "gate_source": ["network", "layer"],
             "entropy_weight": 0.01},
        ],
    })
    runs = study.runs()
    return runs, prepare_splits(runs)


def _fit(runs, splits, use_native):
    models, gens, member_splits = [], [], []
    for r in runs:
        g = run_generator(r.seed)
        split = splits[split_key(r)]
        models.append(init_parameters_(build_model(r, split), g))
        gens.append(g)
        member_splits.append(split)
    return fit_stacked(models, member_splits, [r.train for r in runs], generators=gens, native=use_native)


@pytest.mark.parametrize("fused", [True, False])
def test_native_step_is_bit_identical_to_the_python_step(fused):
    """All gate kinds in one stack, members stopping at different epochs (compaction), lambda on and off."""
    runs, splits = _runs()
    assert native.set_fused(fused)["fused"] == int(fused)
    # one stack per gate-parameter shape: fixed with layer gates, neuron gates, each input-gate source
    for prefix in (("fixed", "layer"), ("neuron",), ("input_network",), ("input_layer",)):
        group = [r for r in runs if r.variant.startswith(prefix)]
        python = _fit(group, splits, False)
        compiled = _fit(group, splits, True)
        for _run, a, b, sa, sb in zip(group, python.results, compiled.results, python.states, compiled.states,
                                     strict=True):
            # bit-identical histories (JSON spells NaN alike: a diverged member's losses are NaN on both sides)
            assert json.dumps([h.to_dict() for h in a.history]) == json.dumps([h.to_dict() for h in b.history])
            assert (a.best_epoch, a.epochs_run, a.diverged_epoch) == (b.best_epoch, b.epochs_run, b.diverged_epoch)
            for name in sa:
                torch.testing.assert_close(sa[name], sb[name], rtol=0, atol=0, equal_nan=True)
        if prefix[0] == "fixed":
            assert len({r.epochs_run for r in python.results}) > 1  # members left the stack at different epochs


def test_every_native_candidate_is_the_registry_candidate():
    """The C++ calls the registry's kernels: same values and derivatives, bit for bit, on awkward sizes too."""
    gen = torch.Generator().manual_seed(3)
    codes = {name: native.candidate_code(name) for name in list_candidates()}
    builtin = {"relu": 0, "tanh": 1, "sigmoid": 2, "gelu": 3, "silu": 4, "softplus": 5, "leaky_relu": 6,
               "identity": 7, "elu": None, "sin": None}  # elu: no registered derivative; sin: no kernel
    assert {k: codes[k] for k in builtin} == builtin
    for numel in (4096, 1000):
        z = torch.randn(numel, generator=gen) * 4
        g = torch.randn(numel, generator=gen)
        for name, code in codes.items():
            if code is None:
                continue
            fn = get_candidate(name)
            y = fn(z)
            assert torch.equal(torch.ops.learnact_native.candidate(code, z), y), name
            derivative = candidate_derivative(fn)
            assert derivative is not None, name
            expected = derivative(g, z, y)
            assert torch.equal(torch.ops.learnact_native.candidate_backward(code, g, z, y), expected), name


def test_codes_come_from_the_registry_so_a_registered_kernel_trains_natively():
    name = "test_native_tanh_alias"
    if name not in list_candidates():
        register_candidate(name, torch.tanh, derivative=lambda g, x, y: torch.ops.aten.tanh_backward(g, y))
    if "test_native_scaled_tanh" not in list_candidates():  # the same derivative, another function: no code
        register_candidate("test_native_scaled_tanh", lambda x: 1.0001 * torch.tanh(x),
                           derivative=lambda g, x, y: torch.ops.aten.tanh_backward(g, y))
    assert native.candidate_code(name) == native.candidate_code("tanh") == 1
    assert native.candidate_code("test_native_scaled_tanh") is None
    act = ActivationConfig(kind="gated", candidates=["relu", name])
    stack = StackedMLP([init_parameters_(MLP(30, (8,), 1, act), torch.Generator().manual_seed(0))])
    assert native.supports(stack, binary=True)
    description = native.describe(stack, [None])
    assert description.segments[0].units[0] == native.UnitDescription("layer", "network", ("relu", name))
    assert description.encode()[:3] == [native.SPEC_VERSION, 1, 1]
    assert int(torch.ops.learnact_native.layout()[0]) == native.SPEC_VERSION
    odd = [init_parameters_(MLP(30, (8,), 1, ActivationConfig(kind="fixed", activation="test_native_scaled_tanh")),
                            torch.Generator().manual_seed(0))]
    assert not native.supports(StackedMLP(odd), binary=True)


def test_the_library_refuses_a_description_of_another_version():
    stack = StackedMLP([init_parameters_(MLP(30, (8,), 1, "tanh"), torch.Generator().manual_seed(0))])
    lam = [None] * len(stack.segments)
    buffers = [stack.new_buffer() for _ in range(3)]
    good = native.NativeStack(stack, lam, buffers, 1e-3, 0.0, [8])
    tensors, spec, choices = good._args
    x = torch.randn(8, 30)
    with pytest.raises(RuntimeError, match=f"stack description version 1, this library reads version "
                                           f"{native.SPEC_VERSION}"):
        torch.ops.learnact_native.evaluate(tensors, [1, *spec[1:]], choices, x, torch.zeros(8, 1))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_native_adam_update_is_the_python_update(fused, weight_decay):
    gen = torch.Generator().manual_seed(5)
    n = 4096 + 16
    start = [torch.randn(n, generator=gen), torch.randn(n, generator=gen) * 1e-2,
             torch.randn(n, generator=gen) * 1e-3, torch.rand(n, generator=gen) * 1e-5]
    native.set_fused(fused)
    for step in (1, 2, 50):
        a = [t.clone() for t in start] + [torch.empty(n)]
        b = [t.clone() for t in start] + [torch.empty(n)]
        _adam_step_(*a, step, 1e-3, weight_decay)
        torch.ops.learnact_native.adam_step(*b, step, 1e-3, weight_decay)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y), (fused, step)


def test_fused_kernels_are_checked_against_aten():
    """Calibration reports ATen's formulation of each fused operation; fusing is on only if all were found."""
    found = native.set_fused(True)
    assert set(found) >= {"tanh_backward", "sigmoid_backward", "lerp", "addcmul", "addcdiv", "mix", "fused"}
    complete = all(v >= 0 for k, v in found.items() if k not in ("mix", "fused")) and found["mix"] == 1
    assert found["fused"] == int(complete)
    assert native.set_fused(False)["fused"] == 0


def test_stacks_the_native_step_cannot_train_fall_back_or_are_refused():
    elu = [init_parameters_(MLP(30, (8,), 1, ActivationConfig(kind="fixed", activation="elu")),
                            torch.Generator().manual_seed(0))]
    assert not native.supports(StackedMLP(elu), binary=True)
    tanh = [init_parameters_(MLP(30, (8,), 3, "tanh"), torch.Generator().manual_seed(0))]
    assert native.supports(StackedMLP(tanh), binary=True)
    assert not native.supports(StackedMLP(tanh), binary=False)  # cross-entropy: the Python step
    runs, splits = _runs()
    elu_run = runs[0].model_copy(update={"activation": ActivationConfig(kind="fixed", activation="elu")})
    with pytest.raises(ValueError, match="native step is unavailable or does not support"):
        _fit([elu_run], splits, True)
    assert _fit([elu_run], splits, None).results[0].epochs_run > 0  # auto: the Python step


def test_environment_variable_turns_the_native_step_off(monkeypatch):
    monkeypatch.setattr(native, "_STATE", {})
    monkeypatch.setenv("LEARNACT_NATIVE", "0")
    assert native.load() is False
    assert not native.available()
    runs, splits = _runs()
    with pytest.raises(ValueError, match="native step is unavailable"):
        _fit(runs[:1], splits, True)


def test_library_path_follows_the_source_and_the_cache_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("LEARNACT_NATIVE_DIR", str(tmp_path))
    first = native.library_path()
    assert first.parent.parent == tmp_path and first.name == "learnact_native.so"
    changed = tmp_path / "native_step.cpp"
    changed.write_text(native._SOURCE.read_text() + "\n// edited\n")
    monkeypatch.setattr(native, "_SOURCE", changed)
    assert native.library_path() != first  # an edited source is built anew, never a stale library loaded


def test_a_library_reading_another_description_version_is_not_used(monkeypatch):
    monkeypatch.setattr(native, "_STATE", {})
    monkeypatch.setattr(native, "SPEC_VERSION", native.SPEC_VERSION + 1)  # as if this Python were newer
    with pytest.warns(RuntimeWarning, match="reads stack descriptions of version .*delete it to rebuild"):
        assert native.load() is False
    assert not native.available()


def test_a_failed_build_warns_once_and_falls_back(monkeypatch, tmp_path):
    import torch.utils.cpp_extension as cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension: c++: command not found")

    monkeypatch.setattr(native, "_STATE", {})
    monkeypatch.setenv("LEARNACT_NATIVE_DIR", str(tmp_path))  # nothing built there
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    with pytest.warns(RuntimeWarning, match="could not be built .*command not found.*Python step"):
        assert native.load() is False
    assert native.load() is False  # remembered: no second attempt, no second warning
    runs, splits = _runs()
    assert _fit(runs[:2], splits, None).results[0].epochs_run > 0


@pytest.mark.parametrize("K", [1, 5, 20])
def test_the_native_member_loop_is_the_python_member_loop(K, monkeypatch):
    """Products without a batched formulation loop over the members; the library's loop (installed by
    ``native.load()``) gives the Python loop's values bit for bit for every kind of product, including the output
    layer's weight gradient (one output: no batched product reproduces it)."""
    from learnact.training import _products

    assert _products._MEMBER_LOOP is not None, "native.load() installs the C++ member loop"
    assert _products.product_choice("wgrad", 64, 32, 1) == -1  # the loop is really used on this shape
    gen = torch.Generator().manual_seed(K)
    x, w, g1, g2, w2 = (_products.aligned_members(torch.randn(K, *shape, generator=gen))
                        for shape in [(64, 32), (1, 32), (64, 1), (64, 16), (16, 32)])
    b = torch.randn(K, 1, generator=gen)
    for key in [("wgrad", 64, 32, 1), ("fwd", 64, 32, 1), ("xgrad", 64, 32, 16)]:
        monkeypatch.setitem(_products._CHOICE, key, -1)

    def products():
        out = torch.empty(K, 1, 32)
        _products.weight_grad_(g1, x, out)
        return out, _products.linear(x, w, b), _products.input_grad(g2, w2)

    native_loop = products()
    monkeypatch.setattr(_products, "_MEMBER_LOOP", None)
    python_loop = products()
    for a, c in zip(native_loop, python_loop, strict=True):
        assert torch.equal(a, c)
    assert torch.equal(python_loop[0], torch.stack([g1[k].t().mm(x[k]) for k in range(K)]))


def test_one_input_feature_trains_alike_in_both_steps_and_the_reference(tmp_path):
    """With one input feature the first layer's product is one multiply-add per element, which BLAS and
    ``addcmul`` round alike: the probe picks that formulation (``_products``: choice 2), the native step computes
    it too, and both steps equal the sequential reference trainer bit for bit."""
    from learnact.experiment.engines import train_one
    from learnact.training import _products

    rng = torch.Generator().manual_seed(3)
    x = torch.randn(240, generator=rng)
    csv = tmp_path / "one.csv"
    csv.write_text("x,y\n" + "".join(f"{v:.6f},{int(v + 0.3 * n > 0)}\n"
                                     for v, n in zip(x.tolist(), torch.randn(240, generator=rng).tolist(),
                                                     strict=True)))
    study = study_from_dict({"name": "one", "seeds": [1, 7], "data": {"dataset": str(csv)},
                             "train": {"max_epochs": 6, "patience": 3, "lr": 0.03},
                             "variants": [{"name": "fixed_{activation}", "kind": "fixed", "activation": ["tanh", "relu"]},
                                          {"name": "layer", "gate": "layer", "temperature": 0.7}]})
    runs = study.runs()
    splits = prepare_splits(runs)
    python, compiled = _fit(runs, splits, False), _fit(runs, splits, True)
    batch = runs[0].train.batch_size
    assert _products.product_choice("fwd", batch, 1, study.backbone.hidden[0]) == 2
    for run, a, b, sa, sb in zip(runs, python.results, compiled.results, python.states, compiled.states,
                                 strict=True):
        ref = train_one(run, splits[split_key(run)])
        want = json.dumps([h.to_dict() for h in ref.fit.history])
        assert json.dumps([h.to_dict() for h in a.history]) == want == json.dumps([h.to_dict() for h in b.history])
        weights = {k: v for k, v in ref.model.state_dict().items() if k in sa}
        assert len(weights) >= 6, sorted(sa)  # every Linear's weight and bias at least
        for name, value in weights.items():
            assert torch.equal(sa[name], value) and torch.equal(sb[name], value), name


def _family_runs(kinds, **activation):
    study = study_from_dict({
        "name": "native_families",
        "seeds": [1, 7, 21],
        "data": {"dataset": "breast_cancer"},
        "backbone": {"hidden": [16, 8]},
        "train": {"max_epochs": 12, "patience": 2, "lr": 0.03},
        "variants": [{"name": f"family_{k}", "kind": k, **activation} for k in kinds]
        + [{"name": "fixed_tanh", "kind": "fixed", "activation": "tanh"}],
    })
    runs = study.runs()
    return runs, prepare_splits(runs)


def _native_step_families():
    """The registered families whose default layer the native step runs here at width 32 (derived from the
    registry and the strategies chosen in this process, not a hand-kept list; at widths such as 16 a ragged batch
    reaches the segment as padded rows, and the spline's and rational's native passes, inexact there, are not
    chosen)."""
    from learnact.model import build_activation
    from learnact.model.activations.families import list_families
    from learnact.training.family_segments import in_native_step

    return [kind for kind in list_families() if in_native_step(build_activation(ActivationConfig(kind=kind), 32, 30), 32)]


def test_the_native_step_runs_the_families_it_claims():
    """The registered families whose default layer the native step runs are those of NATIVE_STEP_FAMILIES, and
    a stack with a family layer whose chosen pass the C++ does not repeat (here a per-unit layer of any family
    that has no such pass per unit, a registered family outside the table) is refused."""
    from learnact.model.activations.families import list_families
    from learnact.training.family_segments import NATIVE_STEP_FAMILIES

    assert _native_step_families() == [k for k in list_families() if k in NATIVE_STEP_FAMILIES]
    refused = [k for k in list_families() if k not in NATIVE_STEP_FAMILIES]
    runs, splits = _family_runs(list_families(), params={"granularity": "unit"})
    models = {r.variant: build_model(r, splits[split_key(r)]) for r in runs}
    refused += [r.variant.removeprefix("family_") for r in runs if not _runs_natively(models[r.variant])]
    assert refused  # per unit, pwl and neural have no pass the C++ repeats
    for kind in refused:
        group = [r for r in runs if r.variant == f"family_{kind}"]
        with pytest.raises(ValueError, match="native step is unavailable or does not support"):
            _fit(group, splits, True)


@pytest.mark.parametrize("granularity", ["layer", "unit"])
def test_family_stacks_train_bit_identically_in_the_native_step(granularity):
    """Every family the native step runs, in one stack beside a fixed segment, members stopping at different
    epochs (compaction): histories and final weights equal the Python step's bit for bit."""
    kinds = _native_step_families()
    runs, splits = _family_runs(kinds, params={"granularity": granularity})
    native_here = [r for r in runs if _runs_natively(build_model(r, splits[split_key(r)]))]
    assert native_here, "no family layer of this granularity runs in the native step"
    python = _fit(native_here, splits, False)
    compiled = _fit(native_here, splits, True)
    for a, b, sa, sb in zip(python.results, compiled.results, python.states, compiled.states, strict=True):
        assert json.dumps([h.to_dict() for h in a.history]) == json.dumps([h.to_dict() for h in b.history])
        assert (a.best_epoch, a.epochs_run, a.diverged_epoch) == (b.best_epoch, b.epochs_run, b.diverged_epoch)
        for name in sa:
            torch.testing.assert_close(sa[name], sb[name], rtol=0, atol=0, equal_nan=True)
    assert len({r.epochs_run for r in python.results}) > 1  # members left the stack at different epochs


def _runs_natively(model):
    from learnact.model.activations import FixedActivation
    from learnact.training.family_segments import in_native_step

    return all(isinstance(act, FixedActivation) or in_native_step(act, width)
               for act, width in zip(model.activations, model.hidden, strict=True))
