"""Gate temperature schedules: the formulas, the config, and both engines applying them identically."""

from __future__ import annotations

import json
import math

import pytest
import torch

from learnact.config import ActivationConfig, RunConfig, TrainConfig
from learnact.exceptions import ConfigError
from learnact.experiment import ENGINES, build_artifacts, prepare_splits, study_from_dict
from learnact.experiment.engines import build_model, split_key, split_shadows, vectorized_engine
from learnact.model import init_parameters_
from learnact.model.state import tensor_state
from learnact.training import native, run_generator
from learnact.training.schedules import TemperatureSchedule, temperature_schedule
from learnact.training.vectorized import fit_stacked


@pytest.mark.parametrize("epochs", [1, 2, 7, 300])
def test_schedule_values_follow_the_formulas(epochs):
    t0, t1 = 2.0, 0.25
    for e in range(1, epochs + 1):
        p = 0.0 if epochs == 1 else (e - 1) / (epochs - 1)
        want = {
            "constant": t0,
            "linear": t0 + (t1 - t0) * p,
            "exponential": t0 * (t1 / t0) ** p,
            "cosine": t1 + 0.5 * (t0 - t1) * (1 + math.cos(math.pi * p)),
        }
        for kind, value in want.items():
            assert math.isclose(TemperatureSchedule(kind, t0, t1, epochs).at(e), value, rel_tol=1e-12), (kind, e)
    for kind in ("linear", "exponential", "cosine"):
        s = TemperatureSchedule(kind, t0, t1, epochs)
        assert s.at(1) == t0
        if epochs > 1:
            assert math.isclose(s.at(epochs), t1, rel_tol=1e-12)
            if epochs > 2:
                assert t1 < s.at(2) < t0  # strictly between on the way
        assert s.at(epochs + 5) == s.at(epochs)  # past the end: stays at T1
    # the geometric schedule multiplies by one factor per epoch; cosine starts and ends flat
    exp = TemperatureSchedule("exponential", 1.0, 0.01, 5)
    assert [round(exp.at(e), 12) for e in range(1, 6)] == [1.0, round(0.01 ** 0.25, 12), 0.1,
                                                           round(0.01 ** 0.75, 12), 0.01]
    cos = TemperatureSchedule("cosine", 1.0, 0.0 + 1e-3, 101)
    assert cos.at(2) - cos.at(1) > cos.at(51) - cos.at(50)


def test_schedule_checks_its_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        TemperatureSchedule("step", 1.0, 0.5, 10)
    with pytest.raises(ValueError, match="> 0"):
        TemperatureSchedule("linear", 1.0, 0.0, 10)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TemperatureSchedule("linear", 1.0, 0.5, 0)


def test_config_names_the_bad_schedule_field():
    with pytest.raises(ConfigError) as err:
        study_from_dict({"name": "s", "variants": [
            {"name": "a", "temperature_schedule": "linear"},
            {"name": "b", "temperature_schedule": "cosin", "temperature_end": 0.5},
            {"name": "c", "temperature_schedule": "cosine", "temperature_end": 0},
        ]})
    text = str(err.value)
    assert "variants[0].temperature_end: temperature_schedule 'linear' needs temperature_end" in text
    assert "variants[1].temperature_schedule: must be one of 'constant', 'linear', 'exponential', 'cosine', " \
           "got 'cosin' (did you mean 'cosine'?)" in text
    assert "variants[2].temperature_end: must be > 0, got 0" in text


def test_a_study_file_refuses_temperature_end_that_nothing_anneals_towards():
    """`temperature_end` without a schedule had trained at `temperature` throughout, with no word; a sweep over
    the schedule (constant against annealed, one shared end) is left as it is."""
    with pytest.raises(ConfigError) as err:
        study_from_dict({"name": "s", "variants": [
            {"name": "a", "temperature": 2.0, "temperature_end": 0.2},
            {"name": "b", "temperature_schedule": "constant", "temperature_end": 0.2},
        ]})
    text = str(err.value)
    for i in (0, 1):
        assert (f"variants[{i}].temperature_end: the constant temperature schedule does not use temperature_end; "
                "set temperature_schedule (linear, exponential, cosine) to anneal towards it, or drop it") in text
    swept = study_from_dict({"name": "s", "variants": [
        {"name": "a_{temperature_schedule}", "temperature_end": 0.2,
         "temperature_schedule": ["constant", "linear"]}]})
    assert [v.name for v in swept.variants] == ["a_constant", "a_linear"]


def test_a_constant_schedule_keeps_the_run_id_and_a_schedule_changes_it():
    base = RunConfig(variant="v", seed=1)
    same = RunConfig(variant="v", seed=1, activation=ActivationConfig(temperature_schedule="constant",
                                                                     temperature_end=0.3))
    assert base.run_id == same.run_id
    assert temperature_schedule(same.activation, same.train) is None
    sched = RunConfig(variant="v", seed=1, activation=ActivationConfig(temperature_schedule="linear",
                                                                      temperature_end=0.3))
    assert sched.run_id != base.run_id
    assert temperature_schedule(sched.activation, TrainConfig(max_epochs=40)) == \
        TemperatureSchedule("linear", 1.0, 0.3, 40)
    fixed = ActivationConfig(kind="fixed", temperature_schedule="linear", temperature_end=0.3)
    assert temperature_schedule(fixed, TrainConfig()) is None  # only gates have a temperature


def _study():
    """Members of one stack with different schedules (and none), every gate kind, one family beside them."""
    return study_from_dict({
        "name": "sched", "seeds": [1, 7], "train": {"max_epochs": 9, "patience": 3, "lr": 0.01},
        "variants": [
            {"name": "layer_{temperature_schedule}", "gate": "layer", "temperature": 2.0, "temperature_end": 0.2,
             "entropy_weight": 0.01, "temperature_schedule": ["constant", "linear", "exponential", "cosine"]},
            {"name": "neuron_up", "gate": "neuron", "temperature": 0.5, "temperature_schedule": "linear",
             "temperature_end": 3.0},
            {"name": "input_cos", "gate": "input", "gate_source": "layer", "temperature_schedule": "cosine",
             "temperature_end": 0.3, "entropy_weight": 0.01},
            {"name": "fixed", "kind": "fixed", "activation": "tanh"},
            {"name": "prelu", "kind": "prelu"},
        ],
    })


def _records(history) -> str:
    """The epoch records as text: equal text is equal values, NaN (a diverged run) included."""
    return json.dumps([r.to_dict() for r in history])


@pytest.fixture(scope="module")
def scheduled():
    runs = _study().runs()
    splits = prepare_splits(runs)
    return runs, splits, {t.run.run_id: t for t in ENGINES["sequential"](runs, splits)}


@pytest.mark.parametrize("workers,max_members", [(1, 64), (2, 3)])
def test_scheduled_runs_are_bit_identical_in_both_engines(scheduled, workers, max_members):
    runs, splits, seq = scheduled
    vec = {t.run.run_id: t for t in vectorized_engine(runs, splits, workers=workers, max_members=max_members)}
    for run_id, a in seq.items():
        b = vec[run_id]
        assert _records(a.fit.history) == _records(b.fit.history), run_id
        for (name, x), y in zip(tensor_state(a.model).items(), tensor_state(b.model).values(), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True, msg=f"{run_id} {name}")
        assert json.dumps(build_artifacts(a).gates) == json.dumps(build_artifacts(b).gates)


def test_the_history_records_each_epochs_temperature(scheduled):
    runs, _, seq = scheduled
    for run in runs:
        t = seq[run.run_id]
        temps = [r.temperature for r in t.fit.history]
        schedule = temperature_schedule(run.activation, run.train)
        if run.activation.kind != "gated":
            assert all(x == [None, None] for x in temps)
            continue
        for epoch, rec in enumerate(temps, start=1):
            value = schedule.at(epoch) if schedule is not None else run.activation.temperature
            want = float(f"{float(torch.tensor(value, dtype=torch.float32)):.7g}")
            assert rec == [want, want], (run.run_id, epoch)
        if schedule is not None:  # the model keeps the temperature of its restored (best) epoch
            best = schedule.at(t.fit.best_epoch or t.fit.epochs_run)
            for act in t.model.gated_layers():
                assert float(act.temperature) == float(torch.tensor(best, dtype=torch.float32))


def test_scheduled_runs_with_other_lengths_are_not_shadows():
    runs = study_from_dict({"name": "s", "variants": [
        {"name": "long", "temperature_schedule": "linear", "temperature_end": 0.1, "max_epochs": 50},
        {"name": "short", "temperature_schedule": "linear", "temperature_end": 0.1, "max_epochs": 40},
        {"name": "const_long", "max_epochs": 50},
        {"name": "const_short", "max_epochs": 40},
    ], "seeds": [1]}).runs()
    trained, shadows = split_shadows(runs)
    assert [r.variant for r in trained] == ["long", "short", "const_long"]
    assert [(r.variant, trained[i].variant) for r, i in shadows] == [("const_short", "const_long")]


def test_native_and_python_steps_agree_with_a_schedule():
    if not native.load():
        pytest.skip("the native step could not be built here")
    runs = [r for r in _study().runs() if r.activation.kind == "gated" and r.activation.gate != "neuron"]
    splits = prepare_splits(runs)
    out = []
    for use_native in (True, False):
        models, gens = [], []
        for r in runs:
            g = run_generator(r.seed)
            models.append(init_parameters_(build_model(r, splits[split_key(r)]), g))
            gens.append(g)
        fitted = fit_stacked(models, [splits[split_key(r)] for r in runs], [r.train for r in runs], generators=gens,
                             native=use_native, schedules=[temperature_schedule(r.activation, r.train) for r in runs])
        out.append((fitted, models))
    (a, ma), (b, mb) = out
    for ra, rb in zip(a.results, b.results, strict=True):
        assert _records(ra.history) == _records(rb.history)
    for x, y in zip(ma, mb, strict=True):
        for p, q in zip(tensor_state(x).values(), tensor_state(y).values(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0, equal_nan=True)

