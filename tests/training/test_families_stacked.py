"""Learnable families train inside the stacks, against the reference trainer.

Every registered family (the registry itself, not a hand list) trains in the
vectorised engine without the reference loop, and each family's stated
equality with the reference trainer holds:

- bit-identical histories and weights (``BIT``, every family registered
  today, at both granularities): the stacked segment performs the
  reference's operations member by member;
- otherwise (a family registered later and not listed here) the same
  stopping and best epochs and validation losses within 1e-6 at every epoch.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import learnact.experiment.engines as engines_module
import learnact.training.loop as loop_module
from learnact.config import ActivationConfig, TrainConfig
from learnact.experiment import ENGINES, build_artifacts, load_study, prepare_splits, study_from_dict
from learnact.experiment.engines import split_key, vectorized_engine
from learnact.model import MLP, FixedActivation, GatedActivation, build_activation, init_parameters_
from learnact.model.activations.families import list_families
from learnact.model.state import tensor_state
from learnact.training import fit, run_generator
from learnact.training.family_segments import Choice, FamilyOps, choose, module_spec
from learnact.training.scheduling import plan_stacks
from learnact.training.vectorized import fit_stacked

#: Families whose stacked training is bit-identical to the reference trainer (see the module docstring).
BIT = {"prelu", "swish", "rational", "pwl", "maxout", "kernel", "neural", "spline"}
TOLERANCE = 1e-6


def _by_id(trained):
    return {t.run.run_id: t for t in trained}


def _history(t):
    return [r.to_dict() for r in t.fit.history]


def _assert_equivalent(seq, vec, bit: bool) -> None:
    name = seq.run.run_id
    assert seq.fit.epochs_run == vec.fit.epochs_run and seq.fit.best_epoch == vec.fit.best_epoch, name
    va = [r.val_loss for r in seq.fit.history]
    vb = [r.val_loss for r in vec.fit.history]
    assert all(abs(a - b) <= TOLERANCE or (math.isnan(a) and math.isnan(b)) for a, b in zip(va, vb, strict=True)), name
    if bit:
        assert _history(seq) == _history(vec), name
        for (key, a), b in zip(tensor_state(seq.model).items(), tensor_state(vec.model).values(), strict=True):
            assert torch.equal(a, b), (name, key)
        ma, mb = build_artifacts(seq).metrics, build_artifacts(vec).metrics
        for key in ("accuracy", "f1", "roc_auc", "best_val_loss"):
            assert ma[key] == mb[key], (name, key)


def _stated_bit(run) -> bool:
    """The equality this module states for a run: bit-identical, or within the tolerance."""
    return run.activation.kind in ("fixed", "gated") or run.activation.kind in BIT


def _family_module(kind: str, width: int = 64) -> nn.Module:
    return build_activation(ActivationConfig(kind=kind), width, 30)


def _family_variants() -> list[dict]:
    variants = [{"name": f"family_{kind}", "kind": kind} for kind in list_families()]
    if "params" in ActivationConfig.model_fields:  # families with per-unit parameters
        variants += [{"name": f"unit_{kind}", "kind": kind, "params": {"granularity": "unit"}}
                     for kind in list_families()]
    return variants


@pytest.fixture(scope="module")
def family_study():
    runs = study_from_dict({
        "name": "families", "seeds": [1, 7], "train": {"max_epochs": 8, "patience": 3, "lr": 0.01},
        "variants": [*_family_variants(), {"name": "fixed_tanh", "kind": "fixed", "activation": "tanh"},
                     {"name": "gate", "gate": "layer", "entropy_weight": 0.01}],
    }).runs()
    splits = prepare_splits(runs)
    return runs, splits, _by_id(ENGINES["sequential"](runs, splits))


@pytest.mark.parametrize("workers", [1, 2])
def test_every_family_matches_the_reference_trainer(family_study, workers):
    runs, splits, seq = family_study
    vec = _by_id(vectorized_engine(runs, splits, workers=workers, max_members=6))
    assert vec.keys() == seq.keys()
    for run_id, t in seq.items():
        _assert_equivalent(t, vec[run_id], _stated_bit(t.run))


def test_exact_families_are_computed_exactly_on_the_probe():
    for kind in list_families():
        choice = choose(_family_module(kind), 64)
        assert choice.exact == (kind in BIT), (kind, choice)


@pytest.mark.parametrize("granularity", ["layer", "unit"])
def test_families_with_a_hand_derived_pass_use_it_at_both_granularities(granularity, monkeypatch):
    """A registered derived pass that stopped reproducing the reference would silently fall back to autograd
    (still exact, at up to twice the time): each one is taken at the preset's widths."""
    import learnact.training.family_segments as family_segments
    from learnact.training.family_segments import _DERIVED

    monkeypatch.setattr(family_segments, "_native_ready", lambda feature: False)  # the Python passes themselves
    monkeypatch.setattr(family_segments, "_CHOICES", {})
    assert {"prelu", "swish", "maxout", "neural", "pwl", "kernel", "rational", "spline"} <= set(_DERIVED)
    for kind in sorted(set(_DERIVED) & set(list_families())):
        if kind in ("neural", "pwl") and granularity == "unit":
            continue  # their derived passes are for the per-layer forms (module docstring); per unit they broadcast
        if kind == "kernel" and granularity == "unit":
            continue  # its coefficients' gradient differs at batches of 1 and 7 (the probe's): it broadcasts
        for width in (64, 32):
            module = build_activation(ActivationConfig(kind=kind, params={"granularity": granularity}), width, 30)
            choice = choose(module, width)
            assert (choice.strategy, choice.exact) == ("derived", True), (kind, granularity, width, choice)


def test_a_study_with_every_family_takes_no_reference_loop(monkeypatch, family_study):
    """The vectorised engine never calls the reference trainer, in this process or in its workers (forked)."""
    runs, splits, _ = family_study

    def forbidden(*args, **kwargs):
        raise AssertionError("the reference loop was called by the vectorised engine")

    monkeypatch.setattr(engines_module, "fit", forbidden)
    monkeypatch.setattr(loop_module, "fit", forbidden)
    kinds = {r.activation.kind for r in runs}
    assert set(list_families()) <= kinds
    for workers in (1, 2):
        trained = list(vectorized_engine(runs, splits, workers=workers))
        assert sorted(t.run.run_id for t in trained) == sorted(r.run_id for r in runs)


def test_the_families_preset_trains_every_family_inside_stacks():
    study = load_study("families")
    kinds = {v.activation.kind for v in study.variants}
    assert set(list_families()) <= kinds, "the families preset must list every registered family"
    assert {v.activation.activation for v in study.variants if v.activation.kind == "fixed"} == \
        {"relu", "tanh", "gelu", "silu"}
    assert len(study.seeds) == 5
    runs = study.runs()
    splits = prepare_splits(runs)
    models = [init_parameters_(engines_module.build_model(r, splits[split_key(r)]), run_generator(r.seed))
              for r in runs]
    stacks = plan_stacks(models, [r.train for r in runs], [splits[split_key(r)] for r in runs], n_parts=2)
    assert sorted(i for s in stacks for i in s) == list(range(len(runs)))
    for members in stacks:  # family members train apart from the fixed and gated members
        families = {runs[i].activation.kind in list_families() for i in members}
        assert len(families) == 1
    # and family by family: 8 families x 5 seeds in two stacks of four whole families (cut by seed, every
    # stack held every family, and each family's passes ran twice per step)
    home = {}
    for n, members in enumerate(stacks):
        for i in members:
            if runs[i].activation.kind in list_families():
                home.setdefault(runs[i].activation.kind, set()).add(n)
    assert set(home) == set(list_families()) and all(len(where) == 1 for where in home.values()), home


def test_the_families_preset_trains_its_family_stacks_in_the_native_step():
    """Where the library is built, every stack the preset plans trains in the native step (each family's pass
    has its C++ twin), so no family stack pays the Python step's dispatch."""
    from learnact.training import native
    from learnact.training.segments import choose_family_strategies
    from learnact.training.stacked import StackedMLP

    if not native.load():
        pytest.skip("the native step could not be built here")
    runs = load_study("families").runs()
    splits = prepare_splits(runs)
    models = [init_parameters_(engines_module.build_model(r, splits[split_key(r)]), run_generator(r.seed))
              for r in runs]
    choose_family_strategies(models)
    stacks = plan_stacks(models, [r.train for r in runs], [splits[split_key(r)] for r in runs], n_parts=2)
    assert all(native.supports(StackedMLP([models[i] for i in s]), binary=True) for s in stacks)


def test_families_the_native_step_runs_are_planned_apart_from_the_others():
    """A per-unit pwl layer has no pass the native step repeats: its members get a stack of their own, so the
    prelu and swish members still train in the native step; a family member counts FAMILY_COST times."""
    from learnact.training import native
    from learnact.training.family_segments import in_native_step
    from learnact.training.scheduling import FAMILY_COST, member_cost
    from learnact.training.segments import choose_family_strategies

    if not native.load():
        pytest.skip("the native step could not be built here")
    study = study_from_dict({
        "name": "apart", "seeds": [1, 7, 21, 42], "backbone": {"hidden": [16, 8]},
        "variants": [{"name": "prelu", "kind": "prelu"}, {"name": "swish", "kind": "swish"},
                     {"name": "pwl_unit", "kind": "pwl", "params": {"granularity": "unit"}}]})
    runs = study.runs()
    splits = prepare_splits(runs)
    models = [engines_module.build_model(r, splits[split_key(r)]) for r in runs]
    choose_family_strategies(models)
    assert not in_native_step(models[-1].activations[0], 16) and in_native_step(models[0].activations[0], 16)
    stacks = plan_stacks(models, [r.train for r in runs], [splits[split_key(r)] for r in runs])
    kinds = [{runs[i].variant for i in s} for s in stacks]
    assert {"pwl_unit"} in kinds and all("pwl_unit" not in k or len(k) == 1 for k in kinds), kinds
    params = sum(p.numel() for p in models[0].parameters())
    assert member_cost(models[0], runs[0].train) == FAMILY_COST * runs[0].train.max_epochs * params
    fixed = MLP(30, (16, 8), 1, "tanh")
    assert member_cost(fixed, runs[0].train) == runs[0].train.max_epochs * sum(p.numel() for p in fixed.parameters())


# --- any nn.Module as a family: the strategies ---------------------------------------------------


class SoftClip(nn.Module):
    """A family the engine has never seen: ``a * tanh(x / a) + b x`` with one ``(a, b)`` per unit."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((width,), 2.0))
        self.leak = nn.Parameter(torch.full((width,), 0.1))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * torch.tanh(x / self.scale) + self.leak * x


class Lookup(nn.Module):
    """Indexes its parameter by binned input (advanced indexing): broadcasting cannot add a member axis."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.linspace(-1.0, 1.0, 5))
        self.register_buffer("edges", torch.tensor([-1.0, 0.0, 1.0]))

    def forward(self, x: Tensor) -> Tensor:
        idx = torch.bucketize(x.detach(), self.edges)
        return x * self.table[idx]


def _with_activation(make, seed: int) -> tuple[MLP, torch.Generator]:
    """The paper's backbone with ``make(width)`` as every activation, initialised from ``seed``."""
    model = MLP(30, (64, 32), 1, "tanh")
    for block, width in zip(model.blocks, model.hidden, strict=True):
        block.activation = make(width)
    gen = run_generator(seed)
    return init_parameters_(model, gen), gen


@pytest.mark.parametrize("make,strategy", [(SoftClip, "broadcast"), (lambda d: Lookup(), "vmap")])
def test_any_module_trains_in_a_stack_like_the_reference(breast_cancer, make, strategy):
    from learnact.data import split_dataset

    seeds = (1, 7, 21)
    splits = [split_dataset(breast_cancer, s, 0.25, 0.2) for s in seeds]
    cfg = TrainConfig(max_epochs=6, patience=2, lr=0.01)
    ref = []
    for s, split in zip(seeds, splits, strict=True):
        model, gen = _with_activation(make, s)
        ref.append((fit(model, split, cfg, gen), model))
    members = [_with_activation(make, s) for s in seeds]
    models, gens = [m for m, _ in members], [g for _, g in members]
    choice = choose(models[0].activations[0], 64)
    assert choice.strategy == strategy and choice.exact
    out = fit_stacked(models, splits, [cfg] * 3, generators=gens)
    for (res, model), got, stacked in zip(ref, out.results, models, strict=True):
        assert [r.to_dict() for r in res.history] == [r.to_dict() for r in got.history]
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), stacked.parameters(), strict=True))


def test_members_with_other_hyper_parameters_get_their_own_segment():
    a = _family_module("pwl")
    b = _family_module("pwl")
    with torch.no_grad():
        b.values.add_(1.0)  # parameter values do not matter
    assert module_spec(a) == module_spec(b)
    c = _family_module("kernel")
    c.gamma = c.gamma * 2  # a hyper-parameter does
    assert module_spec(c) != module_spec(_family_module("kernel"))


def test_a_module_that_cannot_take_a_member_axis_is_refused():
    class Stateful(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.tensor(1.0))

        def forward(self, x: Tensor) -> Tensor:
            return x * self.weight.detach().item()  # .item(): no member axis

    with pytest.raises(ValueError, match="cannot be computed with a member axis"):
        choose(Stateful(), 8)


def test_family_ops_write_each_members_gradient():
    module = _family_module("swish", 16)
    ops = FamilyOps(module, choose(module, 16))
    params = [torch.tensor([0.5, 1.0, 2.0])]
    z = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(0))
    grads = [torch.full((3,), math.nan)]
    out, saved = ops.forward(z, params, train=True)
    gz = ops.backward(saved, torch.ones_like(out), grads)
    for k, beta in enumerate((0.5, 1.0, 2.0)):
        x = z[k].clone().requires_grad_(True)
        b = torch.tensor(beta, requires_grad=True)
        y = x * torch.sigmoid(b * x)
        y.sum().backward()
        assert torch.equal(out[k], y.detach()) and torch.equal(gz[k], x.grad) and torch.equal(grads[0][k], b.grad)


def test_family_strategies_are_chosen_before_the_stacks_fork(monkeypatch, family_study):
    """Every family layer's strategy is in this process's cache when the stacks start, so forked workers inherit
    it (and what its probe imported) instead of probing again, each of them."""
    import learnact.training.family_segments as family_segments

    runs, splits, _ = family_study
    runs = [r for r in runs if r.seed == runs[0].seed]
    monkeypatch.setattr(family_segments, "_CHOICES", {})
    real = engines_module.run_stacks
    seen: list[set] = []

    def spy(jobs, *args, **kwargs):
        seen.append({key[:2] for key in family_segments._CHOICES})  # (spec, width, whether native was ready)
        return real(jobs, *args, **kwargs)

    monkeypatch.setattr(engines_module, "run_stacks", spy)
    trained = list(vectorized_engine(runs, splits, workers=2))
    layers = [(act, width) for t in trained for act, width in zip(t.model.activations, t.model.hidden, strict=True)
              if not isinstance(act, (FixedActivation, GatedActivation))]
    assert {act.family for act, _ in layers} == set(list_families())
    assert seen == [{(module_spec(act), width) for act, width in layers}]


@pytest.mark.parametrize("order", [1, 2, 4])
def test_splines_of_other_orders_than_3_keep_autograd_exactly(order):
    """The derived spline pass is written out for cubic splines (the default); other orders are refused by it and
    take the broadcast strategy, still bit for bit the reference."""
    module = build_activation(ActivationConfig(kind="spline", params={"order": order}), 32, 30)
    assert choose(module, 32) == Choice("broadcast", (True, True, True), True)


def _kernel_strategies() -> list[str]:
    from learnact.training import native

    return ["derived", "native"] if native.load() and native.feature("kernel_terms") else ["derived"]


@pytest.mark.parametrize("strategy", ["derived", "native"])
def test_the_kernel_segment_computes_no_subnormal_term(strategy):
    """Subnormal exponentials (and products with them) take the CPU's slow path, about a hundred times slower: the
    kernel segment zeroes its terms below 1e-30, and its results stay the reference's bit for bit (above), in the
    Python pass and in the native one."""
    from learnact.training import family_segments


    if strategy not in _kernel_strategies():
        pytest.skip("the native library is not available here")
    module = _family_module("kernel")
    ops = FamilyOps(module, Choice(strategy, (False, False), True))
    gen = torch.Generator().manual_seed(3)
    z = 3 * torch.randn(4, 64, 64, generator=gen)  # many inputs far from some dictionary points
    params = [p.detach().unsqueeze(0).repeat(4, *([1] * p.dim())) for p in module.parameters()]
    _, saved = ops.forward(z, params, train=True)
    terms = (saved if strategy == "derived" else saved[0])[5]  # exp(-gamma (u - d_i)^2), every element and point
    reference = torch.exp(-module.gamma * (z.clamp(-3, 3).unsqueeze(-1) - module.dictionary) ** 2)
    tiny = torch.finfo(torch.float32).tiny
    assert ((reference > 0) & (reference < tiny)).any()  # the plain exponential has subnormal terms here
    assert not ((terms > 0) & (terms < 1e-30)).any()
    far = reference < math.exp(family_segments._TERM_FLOOR)
    assert torch.equal(terms[~far], reference[~far]) and not terms[far].any()


def _assert_native_is_python(module: nn.Module, per_unit: tuple[bool, ...], seed: int, edges: list[float]) -> None:
    """Outputs, input and parameter gradients of the native and the derived pass of ``module``'s family equal
    bit for bit (NaN where NaN) for three members with different parameters, on inputs that include ``edges``,
    infinities, NaN and signed zeros."""
    width, n = module.width, 3
    gen = torch.Generator().manual_seed(seed)
    params = [p.detach().unsqueeze(0) + 0.3 * torch.randn(n, *p.shape, generator=gen) for p in module.parameters()]
    z = 4 * torch.randn(n, 21, width, generator=gen)
    z.view(-1)[:8] = torch.tensor([*edges, math.inf, -math.inf, math.nan, 0.0, -0.0, 1e-30])
    grad = torch.randn(z.shape, generator=gen)
    got = {}
    for strategy, layout in (("derived", "contiguous"), ("native", "contiguous"), ("native", "transposed")):
        ops = FamilyOps(module, Choice(strategy, per_unit, True))
        grads = [torch.empty_like(p) for p in params]
        # a stack's batched product may hand a segment its pre-activations transposed in memory
        zs = z.clone() if layout == "contiguous" else z.transpose(1, 2).contiguous().transpose(1, 2)
        gs = grad.clone() if layout == "contiguous" else grad.transpose(1, 2).contiguous().transpose(1, 2)
        out, saved = ops.forward(zs, params, train=True)
        got[strategy, layout] = [out, ops.backward(saved, gs, grads), *grads]
    for key in (("native", "contiguous"), ("native", "transposed")):
        for a, b in zip(got["derived", "contiguous"], got[key], strict=True):
            assert a.shape == b.shape and torch.equal(a.isnan(), b.isnan()), key
            assert torch.equal(torch.nan_to_num(a), torch.nan_to_num(b)), key


_NATIVE_PER_LAYER_ONLY = {"pwl"}  # a native pass for per-layer parameters only (its per-unit form is broadcast)


def _registered_native() -> list[str]:
    from learnact.training.family_segments import _NATIVE

    return sorted(_NATIVE)


@pytest.mark.parametrize("granularity", ["layer", "unit"])
@pytest.mark.parametrize("family", _registered_native())
def test_every_native_pass_is_its_python_pass_bit_for_bit(family, granularity):
    """Each registered native pass against the Python derived pass of its family: outputs, input and parameter
    gradients equal bit for bit (NaN where NaN) on inputs inside, at and beyond the family's range, infinite and
    NaN, members with different parameters; and the probe chooses it at the preset's widths."""
    from learnact.training import native
    from learnact.training.family_segments import _NATIVE

    if not (native.load() and native.feature(_NATIVE[family][2])):
        pytest.skip("the native library is not available here")
    module = build_activation(ActivationConfig(kind=family, params={"granularity": granularity}), 24, 30)
    per_unit = tuple(granularity == "unit" and p.dim() > 0 and p.shape[0] == 24 for p in module.parameters())
    if family in _NATIVE_PER_LAYER_ONLY and granularity == "unit":  # declines, and the probe falls back exactly
        choice = choose(module, 24)
        assert choice.strategy != "native" and choice.exact, choice
        return
    _assert_native_is_python(module, per_unit, len(family), [-3.0, 3.0])
    for w in (64, 32):
        at_width = build_activation(ActivationConfig(kind=family, params={"granularity": granularity}), w, 30)
        choice = choose(at_width, w)
        # per unit at width 64, the kernel pass is inexact at the probe's batches of 1 and 7 (as its derived pass),
        # and another exact strategy is taken
        assert choice.exact and (choice.strategy == "native" or granularity == "unit"), (family, w, choice)


@pytest.mark.parametrize("granularity", ["layer", "unit"])
@pytest.mark.parametrize("size", [2, 7, 20, 33, 70])
def test_the_native_kernel_pass_is_the_python_pass_bit_for_bit(granularity, size):
    """The fused C++ dictionary terms (native_step.cpp: kernel_terms_forward/backward) against the Python derived
    pass they replace: outputs, input and parameter gradients equal bit for bit (NaN where NaN) for dictionaries
    shorter than a vector, of one to three vectors and of more (ATen's sum takes a different route for each), on
    inputs at and beyond the dictionary's ends, infinite and NaN, for members with different parameters; and
    the probe chooses the native pass for them."""
    if "native" not in _kernel_strategies():
        pytest.skip("the native library is not available here")
    width = 24
    module = build_activation(ActivationConfig(kind="kernel", params={"granularity": granularity, "size": size}),
                              width, 30)
    per_unit = (granularity == "unit", granularity == "unit")
    _assert_native_is_python(module, per_unit, size, [float(module.dictionary[0]), float(module.dictionary[-1])])
    # the probe takes the native pass where it is exact at every probe batch, else another exact strategy
    assert choose(module, width).exact


@pytest.mark.parametrize("granularity", ["layer", "unit"])
@pytest.mark.parametrize("degrees", [(1, 0), (2, 1), (3, 3), (5, 4), (4, 6), (9, 2)])
def test_the_native_rational_pass_is_the_python_pass_bit_for_bit(granularity, degrees):
    """The fused C++ rational pass (native_step.cpp: rational_forward/backward) against the Python derived pass:
    bit for bit at degrees whose powers come from the inline products only (up to x^3), from ATen's pow too
    (x^4 and up, in the numerator or the denominator), with no denominator at all, and with sums over the
    coefficients shorter and longer than a vector; the probe chooses the native pass for them."""
    from learnact.training import native

    if not (native.load() and native.feature("rational")):
        pytest.skip("the native library is not available here")
    m, n = degrees
    width = 24
    module = build_activation(ActivationConfig(kind="rational", params={"granularity": granularity,
                                                                        "num_degree": m, "den_degree": n}), width, 30)
    per_unit = (granularity == "unit", granularity == "unit")
    _assert_native_is_python(module, per_unit, m * 10 + n, [-1.0, 1.0])
    # the probe takes the native pass where it is exact at every probe batch (at this width's ragged batches, not
    # for every degree), else another exact strategy
    assert choose(module, width).exact


@pytest.mark.parametrize("granularity", ["layer", "unit"])
@pytest.mark.parametrize("pieces", [2, 3, 9, 17])
def test_the_native_maxout_backward_is_the_python_pass_bit_for_bit(granularity, pieces):
    """The fused C++ maxout backward (native_step.cpp: maxout_backward) against the Python derived pass, bit for
    bit, with sums over the pieces shorter than a vector and longer (ATen's scalar and vector routes), ties
    (signed zeros among the inputs), infinities and NaN; the probe chooses the native pass for them."""
    from learnact.training import native

    if not (native.load() and native.feature("maxout")):
        pytest.skip("the native library is not available here")
    width = 24
    module = build_activation(ActivationConfig(kind="maxout", params={"granularity": granularity,
                                                                      "pieces": pieces}), width, 30)
    per_unit = (granularity == "unit", granularity == "unit")
    _assert_native_is_python(module, per_unit, pieces, [-1.0, 1.0])
    assert choose(module, width) == Choice("native", per_unit, True)


@pytest.mark.parametrize("segments", [1, 2, 8, 31])
def test_the_native_pwl_pass_is_the_python_pass_bit_for_bit(segments):
    """The fused C++ pwl pass (native_step.cpp: pwl_forward/backward), per-layer values, against the Python derived
    pass bit for bit: inputs at the knots, beyond both ends, infinite and NaN, members with different values whose
    gradients accumulate into their own rows; the probe chooses it."""
    from learnact.training import native

    if not (native.load() and native.feature("pwl")):
        pytest.skip("the native library is not available here")
    module = build_activation(ActivationConfig(kind="pwl", params={"segments": segments, "lo": -2.0, "hi": 1.0}),
                              24, 30)
    _assert_native_is_python(module, (False,), segments, [-2.0, 1.0])
    assert choose(module, 24) == Choice("native", (False,), True)


def test_small_terms_are_zeroed_exactly_below_the_floor_and_nowhere_else():
    """The zeroing runs on float masks (comparisons into bool tensors cost about ten times a float operation on
    this CPU build): the result equals ``where(arg < floor, 0, exp(arg))`` bit for bit, at the floor itself, just
    below it, at -inf and 0, and NaN stays NaN."""
    from learnact.training.family_segments import _TERM_FLOOR, _small_terms_zero_exp_

    floor = torch.tensor(_TERM_FLOOR)
    below = torch.nextafter(floor, torch.tensor(-math.inf))
    above = torch.nextafter(floor, torch.tensor(0.0))
    gen = torch.Generator().manual_seed(5)
    arg = -100 * torch.rand(3, 17, 33, generator=gen)
    arg.view(-1)[:6] = torch.stack([floor, below, above, torch.tensor(-math.inf), torch.tensor(0.0),
                                    torch.tensor(math.nan)])
    got = _small_terms_zero_exp_(arg.clone())
    expected = torch.where(arg < _TERM_FLOOR, 0.0, torch.exp(arg))
    assert torch.equal(got.isnan(), expected.isnan()) and got.isnan().sum() == 1
    finite = ~expected.isnan()
    assert torch.equal(got[finite].view(torch.int32), expected[finite].view(torch.int32))
    assert got.view(-1)[0] > 0 and got.view(-1)[1] == 0 and got.view(-1)[2] > 0


def test_family_parameters_that_overflow_diverge_in_the_stacked_engine_as_in_the_reference():
    # a slope of 3e38 (1e300 before float32 bounds were checked) overflows float32 and the probe's outputs NaN:
    # NaN != NaN rejected every strategy, and
    # `learnact run` stopped with an internal error where the sequential engine recorded a diverged run
    runs = study_from_dict({
        "name": "overflow", "seeds": [1], "data": {"dataset": "moons"}, "backbone": {"hidden": [4]},
        "train": {"max_epochs": 2, "patience": 1},
        "variants": [{"name": "steep", "kind": "prelu", "params": {"init_slope": 3e38}},
                     {"name": "high_degree", "kind": "rational", "params": {"num_degree": 25}}],
    }).runs()
    splits = prepare_splits(runs)
    seq = _by_id(ENGINES["sequential"](runs, splits))
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    for run_id, t in seq.items():
        assert (vec[run_id].fit.diverged_epoch, vec[run_id].fit.diverged_reason) == (
            t.fit.diverged_epoch, t.fit.diverged_reason), run_id
    assert {t.run.variant: t.fit.diverged_epoch is not None for t in seq.values()} == {"steep": True,
                                                                                         "high_degree": False}


@pytest.mark.parametrize(("kind", "hidden"), [("spline", [20, 10]), ("spline", [9]), ("swish", [12, 6])])
def test_family_stacks_of_ragged_widths_are_bit_identical_to_the_sequential_engine(kind, hidden):
    """At widths where a batch's values are not a whole number of vector chunks per member (the last partial
    batch, the validation set), the strategy a stack uses is exact on those shapes too: the native spline pass,
    probed on batches of 32 alone, had changed the weights at 1e-7, and swish's sigmoid had read chunks that
    crossed members."""
    study = study_from_dict({"name": "ragged", "seeds": [1, 7], "backbone": {"hidden": hidden},
                             "train": {"max_epochs": 8, "patience": 8},
                             "variants": [{"name": f"family_{kind}", "kind": kind}]})
    runs = study.runs()
    splits = prepare_splits(runs)
    seq = _by_id(ENGINES["sequential"](runs, splits))
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    for run_id, t in seq.items():
        _assert_equivalent(t, vec[run_id], bit=True)
