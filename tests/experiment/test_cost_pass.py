"""The cost pass of train_group: every run gets its variant's cost, measured on a finished run after training."""

from __future__ import annotations

import torch

from learnact.experiment import artifacts, engines, prepare_splits, study_from_dict
from learnact.experiment.engines import train_one
from learnact.training.cost import COST_METRICS


def test_costs_are_measured_once_per_variant_on_a_finished_run(monkeypatch):
    study = study_from_dict({"name": "costs", "seeds": [1, 2, 3], "backbone": {"hidden": [8]},
                             "train": {"max_epochs": 2, "patience": 2},
                             "variants": [{"name": "tanh", "kind": "fixed", "activation": "tanh"},
                                          {"name": "mix", "gate": "layer"}]})
    runs = study.runs()
    splits = prepare_splits(runs)
    trained = [train_one(r, splits[engines.split_key(r)]) for r in runs]
    first_mix = next(t for t in trained if t.run.variant == "mix")
    with torch.no_grad():  # the first mixture run handed over has non-finite kept weights: diverged
        next(first_mix.model.parameters()).fill_(float("nan"))
    monkeypatch.setitem(engines.ENGINES, "fake", lambda runs, splits: iter(trained))
    measured: list[dict] = []
    real = artifacts.measure_step_costs

    def spy(cases, **kwargs):
        measured.append({key: all(bool(torch.isfinite(p).all()) for p in case[0].parameters())
                         for key, case in cases.items()})
        return real(cases, **kwargs)

    monkeypatch.setattr(artifacts, "measure_step_costs", spy)
    monkeypatch.setattr(artifacts, "_COSTS", {})
    arts = engines.train_group("fake", runs)
    assert len(measured) == 1 and len(measured[0]) == 2  # one pass, both variants together
    assert all(measured[0].values())  # the diverged mixture run was passed over for a finished one
    by_variant: dict[str, set] = {}
    for art in arts:
        assert set(COST_METRICS) <= set(art.metrics)
        by_variant.setdefault(art.run.variant, set()).add(tuple(art.metrics[k] for k in COST_METRICS))
    assert {v: len(c) for v, c in by_variant.items()} == {"tanh": 1, "mix": 1}  # seeds share their variant's cost
    statuses = {a.run.run_id: a.metrics["status"] for a in arts}
    assert statuses[first_mix.run.run_id] == "diverged"


def test_variants_differing_only_in_values_share_one_measurement(monkeypatch):
    """Temperature and learning rate do not change a step's operations: one measurement, the same cost; an entropy
    term (non-zero weight) does, and a family's hyper-parameters change its shapes: measured apart."""
    study = study_from_dict({"name": "costs", "seeds": [1], "backbone": {"hidden": [8]},
                             "train": {"max_epochs": 2, "patience": 2},
                             "variants": [{"name": "cold", "gate": "layer", "temperature": 0.5},
                                          {"name": "hot", "gate": "layer", "temperature": 2.0,
                                           "temperature_schedule": "constant"},
                                          {"name": "fast", "gate": "layer", "temperature": 0.5, "lr": 0.01},
                                          {"name": "entropy", "gate": "layer", "temperature": 0.5,
                                           "entropy_weight": 0.01},
                                          {"name": "kernel8", "kind": "kernel", "params": {"size": 8}},
                                          {"name": "kernel20", "kind": "kernel", "params": {"size": 20}}]})
    runs = study.runs()
    splits = prepare_splits(runs)
    trained = [train_one(r, splits[engines.split_key(r)]) for r in runs]
    monkeypatch.setitem(engines.ENGINES, "fake", lambda runs, splits: iter(trained))
    measured: list[int] = []
    real = artifacts.measure_step_costs

    def spy(cases, **kwargs):
        measured.append(len(cases))
        return real(cases, **kwargs)

    monkeypatch.setattr(artifacts, "measure_step_costs", spy)
    monkeypatch.setattr(artifacts, "_COSTS", {})
    arts = {a.run.variant: a for a in engines.train_group("fake", runs)}
    assert measured == [4]  # cold, hot and fast together; entropy; the two kernels
    cost = {v: tuple(a.metrics[k] for k in COST_METRICS) for v, a in arts.items()}
    assert cost["cold"] == cost["hot"] == cost["fast"]
    assert cost["entropy"] != cost["cold"] and cost["kernel8"] != cost["kernel20"]


def test_artefacts_of_stacked_runs_are_built_with_the_collector_paused(monkeypatch):
    # the artefacts pile up while the stacks train; full collections walked them all each few hundred runs (1.7 s
    # over the 1,005-run study). The sequential engine trains in that loop itself: its collector stays on.
    import gc

    study = study_from_dict({"name": "paused", "seeds": [1, 2], "backbone": {"hidden": [4]},
                             "train": {"max_epochs": 2, "patience": 2},
                             "variants": [{"name": "tanh", "kind": "fixed", "activation": "tanh"}]})
    runs = study.runs()
    seen: list[bool] = []
    real = engines.build_artifacts

    def spy(t, **kwargs):
        seen.append(gc.isenabled())
        return real(t, **kwargs)

    monkeypatch.setattr(engines, "build_artifacts", spy)
    assert gc.isenabled()
    for engine, collecting in (("vectorized", False), ("sequential", True)):
        seen.clear()
        arts = engines.train_group(engine, runs)
        assert len(arts) == 2 and seen == [collecting, collecting], engine
        assert gc.isenabled(), engine  # on again after


def test_when_trained_is_called_after_the_last_run_trains_and_before_the_cost_pass(monkeypatch):
    # learnact run starts the report's fork server there: its imports then overlap the cost pass and the writes
    study = study_from_dict({"name": "hook", "seeds": [1, 2], "backbone": {"hidden": [4]},
                             "train": {"max_epochs": 2, "patience": 2},
                             "variants": [{"name": "tanh", "kind": "fixed", "activation": "tanh"}]})
    runs = study.runs()
    splits = prepare_splits(runs)
    events: list[str] = []

    def engine(runs, splits_):
        for r in runs:
            events.append(f"trained {r.seed}")
            yield train_one(r, splits[engines.split_key(r)])

    monkeypatch.setitem(engines.ENGINES, "fake", engine)
    real = artifacts.measure_step_costs
    monkeypatch.setattr(artifacts, "measure_step_costs", lambda cases, **kw: events.append("costs") or real(cases, **kw))
    monkeypatch.setattr(artifacts, "_COSTS", {})
    with engines.when_trained(lambda n: events.append(f"hook {n}")):
        engines.train_group("fake", runs)
    assert events == ["trained 1", "trained 2", "hook 2", "costs"]
    events.clear()
    monkeypatch.setattr(artifacts, "_COSTS", {})
    engines.train_group("fake", runs)  # outside the block: no hook
    assert events == ["trained 1", "trained 2", "costs"]
