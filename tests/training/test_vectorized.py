"""The vectorised engine against the reference trainer, member by member.

Tiny studies on the paper's backbone (30-64-32-1), a few epochs each: the
reference mode must reproduce every sequential run exactly (stopping epoch,
best epoch, test metrics, validation-loss history, weights); members must not
influence each other; the fast mode must train sensibly.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import learnact.training.vectorized as vectorized_module
from learnact.config import ActivationConfig, TrainConfig
from learnact.data import Split
from learnact.experiment import ENGINES, build_artifacts, build_model, prepare_splits, study_from_dict
from learnact.experiment.engines import split_key, split_shadows, vectorized_engine
from learnact.model import MLP, init_parameters_
from learnact.training import entropy_term, fit, run_generator
from learnact.training.scheduling import plan_stacks, run_stacks
from learnact.training.stacked import StackedMLP, Tape, member_rows
from learnact.training.stacked_backward import backward_
from learnact.training.stacked_loss import loss_gradient
from learnact.training.streams import PermutationStreams, hashed_permutations
from learnact.training.vectorized import fit_stacked

METRICS = ("epochs_run", "best_epoch", "accuracy", "f1", "roc_auc")


def _study(max_epochs: int = 12, patience: int = 2, seeds: tuple[int, ...] = (1, 7), lr: float = 0.03):
    """Fixed, layer, neuron and input gates (both context sources), a nonzero lambda."""
    return study_from_dict({
        "name": "tiny",
        "seeds": list(seeds),
        "train": {"max_epochs": max_epochs, "patience": patience, "lr": lr},
        "variants": [
            {"name": "fixed_{activation}", "kind": "fixed", "activation": ["tanh", "relu"]},
            {"name": "layer_lam{entropy_weight}", "gate": "layer", "temperature": 0.7,
             "entropy_weight": [0.0, 0.01]},
            {"name": "neuron", "gate": "neuron", "temperature": 0.5, "entropy_weight": 0.02},
            {"name": "input_{gate_source}", "gate": "input", "gate_source": ["network", "layer"],
             "entropy_weight": 0.01},
        ],
    })


def _by_id(trained):
    return {t.run.run_id: t for t in trained}


def _equal(a, b) -> bool:
    """Equality that treats NaN as equal to NaN (diverged runs record NaN losses)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def _same_history(a, b) -> bool:
    return _equal([r.to_dict() for r in a], [r.to_dict() for r in b])


def _assert_identical(a, b):
    ma, mb = build_artifacts(a).metrics, build_artifacts(b).metrics
    for key in METRICS:
        assert _equal(ma[key], mb[key]), (a.run.run_id, key, ma[key], mb[key])
    assert a.fit.diverged_epoch == b.fit.diverged_epoch
    va = [r.val_loss for r in a.fit.history]
    vb = [r.val_loss for r in b.fit.history]
    assert len(va) == len(vb)
    assert all(abs(x - y) <= 1e-5 or (math.isnan(x) and math.isnan(y)) for x, y in zip(va, vb, strict=True))
    # in fact bit-identical: whole history and weights
    assert _same_history(a.fit.history, b.fit.history)
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q), (a.run.run_id, name)


@pytest.fixture(scope="module")
def tiny_runs():
    runs = _study().runs()
    return runs, prepare_splits(runs)


@pytest.fixture(scope="module")
def sequential(tiny_runs):
    runs, splits = tiny_runs
    return _by_id(ENGINES["sequential"](runs, splits))


def test_reference_mode_matches_sequential_member_by_member(tiny_runs, sequential):
    runs, splits = tiny_runs
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    assert vec.keys() == sequential.keys()
    stopped_early = diverged = 0
    for run_id, seq_run in sequential.items():
        _assert_identical(seq_run, vec[run_id])
        stopped_early += seq_run.fit.epochs_run < seq_run.run.train.max_epochs
        diverged += seq_run.fit.diverged_epoch is not None
    assert stopped_early >= 1  # early stopping was exercised
    assert diverged >= 1  # lr 0.03 makes a layer-context input gate diverge: recorded identically


def test_reference_mode_with_worker_processes_and_small_stacks(tiny_runs, sequential):
    runs, splits = tiny_runs
    vec = _by_id(vectorized_engine(runs, splits, workers=2, max_members=3))
    for run_id, seq_run in sequential.items():
        _assert_identical(seq_run, vec[run_id])


def test_history_has_the_reference_fields(tiny_runs, sequential):
    runs, splits = tiny_runs
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    for run_id, t in vec.items():
        rec = t.fit.history[0]
        assert rec.to_dict().keys() == sequential[run_id].fit.history[0].to_dict().keys()
        if t.run.activation.kind == "fixed":
            assert rec.gate_weights == [None, None] and rec.train_entropy == 0.0
        else:
            assert all(math.isclose(sum(w), 1.0, rel_tol=1e-5) for w in rec.gate_weights)
        assert t.fit.train_time_s > 0


def _members(runs, splits):
    models, gens = [], []
    for run in runs:
        g = run_generator(run.seed)
        models.append(init_parameters_(build_model(run, splits[split_key(run)]), g))
        gens.append(g)
    return models, gens


def _fit(runs, splits, models=None, gens=None):
    if models is None:
        models, gens = _members(runs, splits)
    out = fit_stacked(models, [splits[split_key(r)] for r in runs], [r.train for r in runs], generators=gens)
    return {r.run_id: (res, m) for r, res, m in zip(runs, out.results, models, strict=True)}


def _same(a, b):
    (ra, ma), (rb, mb) = a, b
    assert _same_history(ra.history, rb.history) and ra.epochs_run == rb.epochs_run and ra.best_epoch == rb.best_epoch
    assert all(torch.equal(p, q) for p, q in zip(ma.parameters(), mb.parameters(), strict=True))


def test_members_are_independent_in_one_stack(tiny_runs):
    runs, splits = tiny_runs
    layer = [r for r in runs if r.activation.kind == "gated" and r.activation.gate == "layer"]
    base = _fit(layer, splits)
    # removing a member changes nothing for the others
    fewer = _fit(layer[1:], splits)
    for run_id, res in fewer.items():
        _same(res, base[run_id])
    # adding another seed and a diverging member (weights blown up to 1e6) changes nothing either
    more_runs = prepare_splits([layer[0].model_copy(update={"seed": 99})])
    splits2 = {**splits, **more_runs}
    extra = [layer[0].model_copy(update={"seed": 99}), layer[1].model_copy(update={"variant": "diverging"})]
    models, gens = _members(layer + extra, splits2)
    with torch.no_grad():
        for p in models[-1].parameters():
            p.mul_(1e6)
    grown = _fit(layer + extra, splits2, models, gens)
    for run_id, res in base.items():
        _same(grown[run_id], res)
    diverging = grown[extra[1].run_id][0]
    assert not all(np.isfinite(r.val_loss) for r in diverging.history) or diverging.history[0].val_loss > 10


def test_engine_results_do_not_depend_on_the_other_runs(tiny_runs, sequential):
    runs, splits = tiny_runs
    wild = runs[0].model_copy(update={"variant": "wild", "train": runs[0].train.model_copy(update={"lr": 50.0})})
    vec = _by_id(vectorized_engine([*runs, wild], splits, workers=1))
    for run_id, seq_run in sequential.items():
        _assert_identical(seq_run, vec[run_id])


def test_fast_mode_trains_and_is_deterministic(tiny_runs):
    runs = _study(max_epochs=25, patience=5, lr=1e-3).runs()
    splits = prepare_splits(runs)
    a = _by_id(vectorized_engine(runs, splits, mode="fast", workers=1))
    b = _by_id(vectorized_engine(list(reversed(runs)), splits, mode="fast", workers=1, max_members=4))
    for run_id, t in a.items():
        assert _same_history(t.fit.history, b[run_id].fit.history)
        metrics = build_artifacts(t).metrics
        assert metrics["accuracy"] > 0.85 and metrics["roc_auc"] > 0.9
        assert t.fit.history[-1].train_task < t.fit.history[0].train_task


def test_fast_mode_draws_other_batches_than_the_reference(tiny_runs, sequential):
    runs, splits = tiny_runs
    fast = _by_id(ENGINES["vectorized-fast"](runs[:2], splits))
    for run_id, t in fast.items():
        assert t.fit.history[0].train_loss != sequential[run_id].fit.history[0].train_loss


def test_hashed_permutations_are_permutations_of_seed_and_epoch():
    p = hashed_permutations(torch.tensor([3, 8, 3]), 5, 50)
    assert p.shape == (3, 50)
    assert all(sorted(row.tolist()) == list(range(50)) for row in p)
    assert torch.equal(p[0], p[2]) and not torch.equal(p[0], p[1])
    assert not torch.equal(p[0], hashed_permutations(torch.tensor([3]), 6, 50)[0])


def test_reference_streams_are_shared_by_members_in_the_same_state():
    a, b, c = run_generator(4), run_generator(4), run_generator(5)
    streams = PermutationStreams(20, "reference", generators=[a, b, c])
    assert streams.member_stream.tolist() == [0, 0, 1]
    first = streams.next_epoch(1)
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])


def test_stack_planning_groups_fixed_members_with_layer_gates(tiny_runs):
    runs, splits = tiny_runs
    models, _ = _members(runs, splits)
    stacks = plan_stacks(models, [r.train for r in runs], [splits[split_key(r)] for r in runs])
    kinds = [sorted({(runs[i].activation.kind, runs[i].activation.gate) for i in s}) for s in stacks]
    assert [("fixed", "layer"), ("gated", "layer")] in kinds  # fixed ride with layer gates
    assert sum(len(s) for s in stacks) == len(runs)
    small = plan_stacks(models, [r.train for r in runs], [splits[split_key(r)] for r in runs], max_members=2)
    assert max(len(s) for s in small) <= 2 and sorted(i for s in small for i in s) == list(range(len(runs)))


def test_stack_rejects_models_of_different_shapes():
    a = MLP(30, (64, 32), 1, "tanh")
    b = MLP(30, (16,), 1, "tanh")
    with pytest.raises(ValueError, match="cannot share a stack"):
        StackedMLP([a, b])


def test_fit_stacked_checks_its_arguments(tiny_runs):
    runs, splits = tiny_runs
    models, gens = _members(runs[:2], splits)
    with pytest.raises(ValueError, match="one split and one config per model"):
        fit_stacked(models, [splits[split_key(runs[0])]], [r.train for r in runs[:2]], generators=gens)
    with pytest.raises(ValueError, match="one generator per member"):
        fit_stacked(models, [splits[split_key(r)] for r in runs[:2]], [r.train for r in runs[:2]])
    other = runs[1].train.model_copy(update={"lr": 0.5})
    with pytest.raises(ValueError, match="must share batch_size, lr"):
        fit_stacked(models, [splits[split_key(r)] for r in runs[:2]], [runs[0].train, other], generators=gens)


@pytest.mark.parametrize("hidden,batch", [((64, 32), 21), ((20, 10, 7), 13), ((50,), 9)])
def test_hand_derived_backward_matches_autograd(hidden, batch):
    """Every gate kind, fixed candidates and the entropy term, also on widths that are no multiple of 32."""
    specs = [ActivationConfig(kind="fixed", activation="sigmoid"), ActivationConfig(kind="fixed", activation="relu"),
             ActivationConfig(gate="layer", temperature=0.7), ActivationConfig(gate="neuron", temperature=2.0),
             ActivationConfig(gate="input", gate_source="layer"), ActivationConfig(gate="input")]
    gen = torch.Generator().manual_seed(0)
    for group in (specs[:3], specs[3:4], specs[4:5], specs[5:]):
        models, lams = [], []
        for i, spec in enumerate(group * 2):
            m = init_parameters_(MLP(30, hidden, 1, spec), torch.Generator().manual_seed(i))
            with torch.no_grad():
                for name, p in m.named_parameters():
                    if name.endswith("logits"):
                        p.normal_(generator=gen)
            models.append(m)
            lams.append(0.0 if spec.kind == "fixed" or i < len(group) else 0.05)
        stack = StackedMLP(models)
        order = stack.order.tolist()
        x = torch.randn(len(models), batch, 30, generator=gen)
        y = (torch.rand(len(models), batch, 1, generator=gen) > 0.5).float()
        tape = Tape()
        logits, _ = stack.forward(x[order], tape)
        lam = torch.tensor([lams[i] for i in order])
        weights = []
        for seg in stack.segments:
            on = lam[seg.rows] != 0
            weights.append((lam[seg.rows], None if bool(on.all()) else on) if seg.gated and bool(on.any()) else None)
        backward_(stack, tape, loss_gradient(torch.sigmoid(member_rows(logits)), y[order]), weights)
        for row, i in enumerate(order):
            model = models[i]
            out, gates = model.forward_with_gates(x[i])
            loss = torch.nn.functional.binary_cross_entropy(torch.sigmoid(out), y[i])
            if lams[i]:
                loss = loss + lams[i] * entropy_term(gates)
            model.zero_grad()
            loss.backward()
            assert torch.allclose(out, logits[row], atol=1e-6)
            for name, p in model.named_parameters():
                torch.testing.assert_close(stack.grads[name][row], p.grad, rtol=1e-5, atol=1e-7)


def test_multiclass_members_train_like_the_reference():
    gen = np.random.default_rng(0)
    X = gen.normal(size=(200, 30)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    idx = np.arange(200)
    split = Split(X[:120], y[:120], X[120:160], y[120:160], X[160:], y[160:], idx[:120], idx[120:160], idx[160:],
                  None, 3)  # type: ignore[arg-type]
    cfg = TrainConfig(max_epochs=5, patience=10)
    gens = [run_generator(s) for s in (1, 2)]
    models = [init_parameters_(MLP(30, (64, 32), 3, "tanh"), g) for g in gens]
    out = fit_stacked(models, [split, split], [cfg, cfg], generators=gens)
    for s, res in zip((1, 2), out.results, strict=True):
        g = run_generator(s)
        ref = init_parameters_(MLP(30, (64, 32), 3, "tanh"), g)
        expected = fit(ref, split, cfg, g)
        got = [r.val_loss for r in res.history]
        assert np.allclose(got, [r.val_loss for r in expected.history], rtol=1e-5, atol=1e-6)


def test_members_with_different_train_sizes_match_the_reference():
    """Different data settings give different train-set sizes: such members never share a stack."""
    base = _study(max_epochs=4, patience=2).runs()
    picked = [r for r in base if r.activation.gate == "layer"][:2]
    runs = [*picked, *(r.model_copy(update={"data": r.data.model_copy(update={"val_size": 0.3})}) for r in picked)]
    splits = prepare_splits(runs)
    sizes = {splits[split_key(r)].X_train.shape[0] for r in runs}
    assert len(sizes) == 2
    seq = _by_id(ENGINES["sequential"](runs, splits))
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    for run_id, t in seq.items():
        _assert_identical(t, vec[run_id])


def test_stack_planning_merges_gate_kinds_when_their_dummy_rows_are_cheap(tiny_runs):
    runs, splits = tiny_runs
    picked = [r for r in runs if r.activation.kind == "fixed" or r.activation.gate == "layer"
              or (r.activation.gate == "input" and r.activation.gate_source == "network")]
    models, _ = _members(picked, splits)
    stacks = plan_stacks(models, [r.train for r in picked], [splits[split_key(r)] for r in picked])
    assert len(stacks) == 1  # layer logits and network-input heads: 1,100 dummy values per member at most
    # heads of different shapes under one name (layer-input contexts) can never share a stack
    models, _ = _members(runs, splits)
    stacks = plan_stacks(models, [r.train for r in runs], [splits[split_key(r)] for r in runs])
    for s in stacks:
        StackedMLP([models[i] for i in s])


def test_an_idle_core_takes_over_part_of_a_running_stack(tiny_runs, sequential):
    """One stack, two worker slots: the stack forks a helper for half of its members, results unchanged."""
    runs, splits = tiny_runs
    runs = [r for r in runs if r.activation.kind == "fixed" or r.activation.gate == "layer"
            or (r.activation.gate == "input" and r.activation.gate_source == "network")]
    models, gens = _members(runs, splits)
    job = functools.partial(fit_stacked, models, [splits[split_key(r)] for r in runs], [r.train for r in runs],
                            generators=gens)
    [(index, fitted)] = list(run_stacks([job], [1.0], workers=2, executor="processes"))
    assert fitted.helpers >= 1
    assert fitted.member_epochs == sum(r.epochs_run for r in fitted.results)
    by_id = {r.run_id: i for i, r in enumerate(runs)}
    for run_id, i in by_id.items():
        seq = sequential[run_id]
        res, state = fitted.results[i], fitted.states[i]
        assert _same_history(seq.fit.history, res.history), run_id
        assert (seq.fit.epochs_run, seq.fit.best_epoch) == (res.epochs_run, res.best_epoch)
        for name, p in seq.model.named_parameters():
            assert torch.equal(p, state[name]), (run_id, name)


def test_a_failing_helper_process_is_reported(tiny_runs, monkeypatch):
    runs, splits = tiny_runs
    runs = [r for r in runs if r.activation.kind == "fixed"]
    models, gens = _members(runs, splits)
    original = vectorized_module._EarlyStopping.step

    def failing_after_fork(*args, **kwargs):
        if vectorized_module.worksharing.CHILD_FD != -1:
            raise FloatingPointError("boom in the helper")
        return original(*args, **kwargs)

    monkeypatch.setattr(vectorized_module._EarlyStopping, "step", failing_after_fork)
    job = functools.partial(fit_stacked, models, [splits[split_key(r)] for r in runs], [r.train for r in runs],
                            generators=gens)
    with pytest.raises(RuntimeError, match="boom in the helper"):
        list(run_stacks([job], [1.0], workers=2, executor="processes"))


def _shadow_study():
    """Pairs that differ only in when they stop (as the paper's static T=0.7 and entropy lambda=0 do)."""
    return study_from_dict({
        "name": "shadows",
        "seeds": [1, 7],
        "train": {"max_epochs": 14, "patience": 3, "lr": 0.01},
        "variants": [
            {"name": "long", "gate": "layer", "temperature": 0.7},
            {"name": "short", "gate": "layer", "temperature": 0.7, "patience": 1, "max_epochs": 9},
            {"name": "capped", "gate": "layer", "temperature": 0.7, "max_epochs": 2},
            {"name": "patient_but_capped", "gate": "layer", "temperature": 0.7, "patience": 6, "max_epochs": 5},
            {"name": "other_T", "gate": "layer", "temperature": 0.5, "patience": 1},
        ],
    }).runs()


def test_split_shadows_finds_runs_that_only_stop_earlier():
    runs = _shadow_study()
    trained, shadows = split_shadows(runs)
    names = {(r.variant, r.seed) for r in trained}
    assert names == {(v, s) for v in ("long", "patient_but_capped", "other_T") for s in (1, 7)}
    followed = {(r.variant, r.seed): (trained[i].variant, trained[i].seed) for r, i in shadows}
    assert followed == {("short", 1): ("long", 1), ("short", 7): ("long", 7),
                        ("capped", 1): ("long", 1), ("capped", 7): ("long", 7)}


def test_shadow_runs_equal_their_own_sequential_training():
    runs = _shadow_study()
    splits = prepare_splits(runs)
    seq = _by_id(ENGINES["sequential"](runs, splits))
    for workers in (1, 2):
        vec = _by_id(vectorized_engine(runs, splits, workers=workers))
        assert vec.keys() == seq.keys()
        for run_id, t in seq.items():
            _assert_identical(t, vec[run_id])
    short = [t for t in seq.values() if t.run.variant == "short"]
    assert all(t.fit.epochs_run < 9 for t in short)  # stopped by its own patience, before the long run


def test_fit_stacked_rejects_a_shadow_that_outlasts_its_member(tiny_runs):
    runs, splits = tiny_runs
    models, gens = _members(runs[:1], splits)
    longer = runs[0].train.model_copy(update={"max_epochs": runs[0].train.max_epochs + 1})
    with pytest.raises(ValueError, match="a shadow must equal its member 0"):
        fit_stacked(models, [splits[split_key(runs[0])]], [runs[0].train], generators=gens, shadows=[(longer, 0)])


def test_candidates_with_and_without_registered_derivatives_match_the_reference():
    """elu has no registered derivative (autograd on a recomputation), gelu and identity do."""
    runs = study_from_dict({
        "name": "candidates", "seeds": [3], "train": {"max_epochs": 4, "patience": 2, "lr": 0.01},
        "variants": [
            {"name": "mix", "gate": "neuron", "candidates": ["elu", "gelu", "identity"], "entropy_weight": 0.01},
            {"name": "fixed_elu", "kind": "fixed", "activation": "elu"},
        ],
    }).runs()
    splits = prepare_splits(runs)
    seq = _by_id(ENGINES["sequential"](runs, splits))
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    for run_id, t in seq.items():
        _assert_identical(t, vec[run_id])


def _multiclass_runs(variants: list[dict], dataset: str = "iris", hidden: list[int] | None = None):
    study = study_from_dict({"name": "mc", "seeds": [1, 2], "data": {"dataset": dataset},
                             "backbone": {"hidden": hidden or [8]},
                             "train": {"max_epochs": 3, "patience": 3, "lr": 0.01}, "variants": variants})
    runs = study.runs()
    return runs, prepare_splits(runs)


def test_multiclass_losses_are_bit_identical_to_the_sequential_engine():
    """Each member's cross-entropy is reduced as ``F.cross_entropy``'s mean reduces one model's (it had
    differed in the last bit: a different summation order, which can flip early stopping)."""
    runs, splits = _multiclass_runs([{"name": "relu", "kind": "fixed", "activation": "relu"}])
    seq = _by_id(ENGINES["sequential"](runs, splits))
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    for run_id, t in seq.items():
        _assert_identical(t, vec[run_id])


def test_multiclass_gated_mixtures_with_gelu_are_bit_identical_to_the_sequential_engine():
    """A gelu-containing mixture on a multi-class task (weights and predictions had differed)."""
    runs, splits = _multiclass_runs([{"name": "g2_lam{entropy_weight}", "kind": "gated",
                                      "candidates": ["relu", "gelu"], "entropy_weight": [0.0, 0.02]}],
                                    hidden=[16, 8])
    seq = _by_id(ENGINES["sequential"](runs, splits))
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    for run_id, t in seq.items():
        _assert_identical(t, vec[run_id])


@pytest.mark.parametrize("native", ["1", "0"])
def test_binary_gelu_stacks_of_ragged_widths_are_bit_identical_to_the_sequential_engine(native, monkeypatch):
    """At widths where a member's values are not a whole number of vector chunks, gelu reads the contiguous
    stack (the padded rows that most kernels need gave gelu other values), in the native step and the Python one."""
    from learnact.training import native as native_module
    if native == "0":
        monkeypatch.setattr(native_module, "_STATE", {"ok": False})  # the Python step
    elif not native_module.load():
        pytest.skip("no native step here")
    runs, splits = _multiclass_runs([{"name": "fixed", "kind": "fixed", "activation": "gelu"},
                                     {"name": "g2", "kind": "gated", "candidates": ["relu", "gelu"]}],
                                    dataset="breast_cancer", hidden=[12, 6])
    seq = _by_id(ENGINES["sequential"](runs, splits))
    vec = _by_id(vectorized_engine(runs, splits, workers=1))
    for run_id, t in seq.items():
        _assert_identical(t, vec[run_id])
