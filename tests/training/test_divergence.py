"""Diverging runs: both engines stop them at the same epoch, for the same reason, and nothing raises.

The study holds the settings the issue reported as fatal (a learning rate of
1e30 for a fixed and a gated run, a temperature of 5e-324, an entropy weight
of -3.4e38, where -1e308 is now refused as beyond float32) next to runs that train normally. The sequential reference loop,
the vectorised engine (native step where it builds) and the Python stacked
step must record the same status, epoch and reason in ``metrics.json``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from learnact.experiment import ENGINES, build_artifacts, build_model, prepare_splits, study_from_dict
from learnact.experiment.engines import split_key, vectorized_engine
from learnact.model import init_parameters_
from learnact.training import EpochRecord, divergence_reason, fit, native, run_generator
from learnact.training.loop import all_finite
from learnact.training.vectorized import fit_stacked

DIVERGING = ("fixed_lr", "gated_lr", "gated_cold", "gated_neglam")


@pytest.fixture(scope="module")
def study():
    study = study_from_dict({
        "name": "nan", "seeds": [1, 7], "backbone": {"hidden": [8, 4]},
        "train": {"max_epochs": 5, "patience": 5},
        "variants": [
            {"name": "fixed_ok", "kind": "fixed", "activation": "tanh"},
            {"name": "fixed_lr", "kind": "fixed", "activation": "tanh", "lr": 1e30},
            {"name": "gated_ok", "gate": "layer"},
            {"name": "gated_lr", "gate": "layer", "lr": 1e30},
            {"name": "gated_cold", "gate": "layer", "temperature": 5e-324},
            {"name": "gated_neglam", "gate": "layer", "entropy_weight": -3.4e38},
            {"name": "input_ok", "gate": "input", "gate_source": "network"},
        ],
    })
    runs = study.runs()
    return runs, prepare_splits(runs)


def _outcome(metrics: dict) -> tuple:
    return metrics["status"], metrics["diverged_epoch"], metrics["diverged_reason"]


def test_sequential_and_vectorised_engines_record_the_same_status_epoch_and_reason(study):
    runs, splits = study
    seq = {t.run.run_id: build_artifacts(t) for t in ENGINES["sequential"](runs, splits)}
    vec = {t.run.run_id: build_artifacts(t) for t in vectorized_engine(runs, splits, workers=1)}
    assert seq.keys() == vec.keys() == {r.run_id for r in runs}
    for run in runs:
        a, b = seq[run.run_id].metrics, vec[run.run_id].metrics
        assert _outcome(a) == _outcome(b), run.run_id
        if run.variant in DIVERGING:
            assert a["status"] == "diverged" and a["diverged_epoch"] == 1, (run.run_id, _outcome(a))
            assert a["diverged_reason"].startswith("non-finite ")
            # a diverged run's test metrics are NaN, its costs are kept
            assert all(math.isnan(a[m]) for m in ("accuracy", "f1", "roc_auc", "log_loss"))
            assert a["epochs_run"] == 1 and a["n_params"] > 0
        else:
            assert _outcome(a) == ("finished", None, None), run.run_id
            assert 0.0 <= a["accuracy"] <= 1.0
    by_variant = {r.variant: seq[r.run_id].metrics["diverged_reason"] for r in runs}
    assert by_variant["fixed_lr"] == "non-finite training loss and validation loss"
    assert "gate weights in layers 1, 2" in by_variant["gated_cold"]
    assert "training loss" in by_variant["gated_neglam"]


def _members(runs, splits, mutate=None):
    models, generators, member_splits = [], [], []
    for run in runs:
        g = run_generator(run.seed)
        model = init_parameters_(build_model(run, splits[split_key(run)]), g)
        if mutate is not None:
            mutate(model)
        models.append(model)
        generators.append(g)
        member_splits.append(splits[split_key(run)])
    return models, generators, member_splits


def _stacked_steps():
    return [False, True] if native.load() else [False]


@pytest.mark.parametrize("use_native", _stacked_steps())
def test_python_and_native_stacked_steps_stop_diverging_members_like_the_reference(study, use_native):
    runs, splits = study
    same_lr = [r for r in runs if r.train.lr == runs[0].train.lr]  # one stack: lr must agree
    models, generators, member_splits = _members(same_lr, splits)
    stacked = fit_stacked(models, member_splits, [r.train for r in same_lr], generators=generators,
                          native=use_native)
    for run, got in zip(same_lr, stacked.results, strict=True):
        (model,), (g,), (split,) = _members([run], splits)
        want = fit(model, split, run.train, g)
        assert (got.diverged_epoch, got.diverged_reason) == (want.diverged_epoch, want.diverged_reason), run.run_id
        assert (run.variant in DIVERGING) == (want.diverged_epoch is not None)


def _infinite_weight(model):
    with torch.no_grad():
        model.blocks[0].linear.weight[0, 0] = float("inf")


@pytest.mark.parametrize("use_native", [None, *_stacked_steps()])
def test_non_finite_weights_with_finite_losses_count_as_diverged(study, use_native):
    """An infinite weight behind a saturated tanh leaves every loss finite: the weights check stops the run."""
    runs, splits = study
    fixed = [r.model_copy(update={"train": r.train.model_copy(update={"weight_decay": 0.0})})
             for r in runs if r.variant == "fixed_ok"]
    models, generators, member_splits = _members(fixed, splits, _infinite_weight)
    if use_native is None:
        results = [fit(m, s, r.train, g) for m, s, r, g in zip(models, member_splits, fixed, generators, strict=True)]
    else:
        results = fit_stacked(models, member_splits, [r.train for r in fixed], generators=generators,
                              native=use_native).results
    for res in results:
        first = res.history[0]
        assert math.isfinite(first.train_loss) and math.isfinite(first.val_loss)
        assert (res.diverged_epoch, res.diverged_reason, res.epochs_run) == (1, "non-finite weights", 1)


def test_divergence_reason_names_what_is_not_finite():
    nan = float("nan")
    assert divergence_reason(EpochRecord(3, 0.5, 0.5, 0.0, 0.4, [None], [None])) == "non-finite weights"
    assert divergence_reason(EpochRecord(1, nan, nan, 0.0, 0.4, [None], [None])) == "non-finite training loss"
    assert divergence_reason(EpochRecord(1, 0.5, 0.5, 0.0, float("inf"), [None], [None])) == \
        "non-finite validation loss"
    rec = EpochRecord(2, nan, nan, nan, nan, [[0.5, 0.5], [nan, nan]], [0.6, nan])
    assert divergence_reason(rec) == "non-finite training loss, validation loss and gate weights in layer 2"


def test_an_epoch_record_dict_is_dataclasses_asdict_with_every_field():
    # to_dict is written out field by field for speed; it must stay what asdict gives, lists copied.
    from dataclasses import asdict, fields

    from learnact.training.history import EpochRecord

    rec = EpochRecord(3, 0.5, 0.4, 0.1, 0.6, gate_weights=[[0.2, 0.8], None], gate_entropy=[0.5, None],
                      temperature=[0.7, None])
    d = rec.to_dict()
    assert d == asdict(rec) and list(d) == [f.name for f in fields(EpochRecord)]
    assert d["gate_weights"][0] is not rec.gate_weights[0] and d["gate_entropy"] is not rec.gate_entropy


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(1, 300), elements=st.one_of(
    st.floats(width=32), st.sampled_from([np.float32(3.4e38), np.float32(-3.4e38), np.float32(0.0)]))))
def test_all_finite_is_the_elementwise_check(values):
    """The sum-first check answers as ``torch.isfinite(t).all()`` does, overflowing finite sums included."""
    t = torch.from_numpy(values)
    assert all_finite(t) == bool(torch.isfinite(t).all())


def test_all_finite_sees_finite_weights_whose_sum_overflows():
    """Finite values whose float32 sum is infinite are finite; a NaN or an infinity among finite ones is not."""
    big = torch.full((8,), 3.0e38)
    assert not math.isfinite(float(big.sum())) and all_finite(big)
    for bad in (math.nan, math.inf, -math.inf):
        t = torch.zeros(1000)
        t[517] = bad
        assert not all_finite(t)
    mixed = torch.tensor([math.inf, -math.inf, 1.0])  # sums to NaN, not to a finite value
    assert not all_finite(mixed)
