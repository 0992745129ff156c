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
