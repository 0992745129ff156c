"""Gate diagnostics: known weight vectors by hand, and a real input-gate run recomputed from its weights."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from learnact import store
from learnact.evaluation import (
    DIAGNOSTIC_COLUMNS,
    diagnostics_table,
    effective_candidates,
    entropy_nats,
    gate_diagnostics,
    gate_statistics,
)
from learnact.exceptions import RunStoreError


def _run(study, variant, seed=7):
    (folder,) = [f for f in store.finished_runs(study) if f.name.startswith(f"{variant}__s{seed}__")]
    return folder


@pytest.mark.parametrize(
    "weights, entropy, n_eff",
    [
        ([1 / 3, 1 / 3, 1 / 3], math.log(3), 3.0),
        ([1.0, 0.0, 0.0], 0.0, 1.0),
        ([0.5, 0.5, 0.0], math.log(2), 2.0),
        ([0.25, 0.25, 0.25, 0.25], math.log(4), 4.0),
        ([0.7, 0.2, 0.1], -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)), None),
    ],
)
def test_entropy_and_effective_candidates_on_known_vectors(weights, entropy, n_eff):
    assert entropy_nats(np.array(weights))[0] == pytest.approx(entropy, abs=1e-12)
    assert effective_candidates(np.array(weights)) == pytest.approx(n_eff if n_eff else math.exp(entropy))


def test_effective_candidates_of_rows_is_exp_of_mean_entropy():
    w = np.array([[1.0, 0.0], [0.5, 0.5]])  # entropies 0 and log 2 -> exp(log(2) / 2) = sqrt(2)
    assert effective_candidates(w) == pytest.approx(math.sqrt(2))


def test_gate_statistics_worked_example():
    w = np.array([[0.95, 0.03, 0.02], [0.10, 0.85, 0.05], [0.92, 0.04, 0.04], [0.60, 0.30, 0.10]])
    s = gate_statistics(w, ["relu", "tanh", "sigmoid"], collapse_threshold=0.9)
    top = np.array([0.95, 0.85, 0.92, 0.60])
    h = -(w * np.log(w)).sum(axis=1)
    assert s["n_rows"] == 4
    assert s["entropy_mean"] == pytest.approx(h.mean()) and s["entropy_std"] == pytest.approx(h.std())
    assert s["max_weight_mean"] == pytest.approx(0.83) and s["max_weight_std"] == pytest.approx(top.std())
    assert s["max_weight_min"] == pytest.approx(0.60)
    assert s["argmax_share"] == {"relu": 0.75, "tanh": 0.25, "sigmoid": 0.0}
    assert s["dominant"] == "relu"
    assert s["weight_mean"]["relu"] == pytest.approx((0.95 + 0.10 + 0.92 + 0.60) / 4)
    assert s["effective_candidates"] == pytest.approx(math.exp(h.mean()))
    assert s["collapsed"] is False  # 0.85 and 0.60 are not above 0.9
    assert gate_statistics(w[[0, 2]], ["relu", "tanh", "sigmoid"])["collapsed"] is True
    assert gate_statistics(w, ["relu", "tanh", "sigmoid"], collapse_threshold=0.5)["collapsed"] is True


def test_gate_statistics_rejects_bad_input():
    with pytest.raises(ValueError, match="sum to one"):
        gate_statistics(np.array([0.5, 0.6]), ["a", "b"])
    with pytest.raises(ValueError, match="2 candidate names"):
        gate_statistics(np.array([0.2, 0.3, 0.5]), ["a", "b"])
    with pytest.raises(ValueError, match="collapse_threshold=1.2"):
        gate_statistics(np.array([0.5, 0.5]), ["a", "b"], collapse_threshold=1.2)


def _recompute_gates(folder):
    """Rebuild the model from config.json + weights.safetensors and run it on the saved test rows."""
    from learnact.data import Standardizer, load_dataset
    from learnact.model import MLP

    cfg = store.read_run_config(folder)
    prep = store.read_preprocessing(folder)
    ds = load_dataset(cfg.data.dataset)
    scaler = Standardizer.from_dict(prep["scaler"])
    X = scaler.transform(ds.X[np.asarray(prep["split"]["test"])]).astype(np.float32)
    model = MLP(ds.X.shape[1], cfg.backbone.hidden, 1, cfg.activation)
    model.load_state_dict(store.load_state(folder))
    model.eval()
    with torch.no_grad():
        _, gates = model.forward_with_gates(torch.from_numpy(X))
    return cfg, gates


@pytest.mark.parametrize("variant", ["input_T0.7", "input_layer_T1"])
def test_input_gate_diagnostics_match_recomputed_gates(tiny_study, variant):
    folder = _run(tiny_study, variant)
    cfg, gates = _recompute_gates(folder)
    diags = gate_diagnostics(folder)
    assert [d["layer"] for d in diags] == [1, 2]
    for diag, g in zip(diags, gates, strict=True):
        w = g.double().numpy()
        n, c = w.shape
        assert n == len(store.read_preprocessing(folder)["split"]["test"]) and diag["n_rows"] == n
        assert diag["gate"] == "input" and diag["rows"] == "samples" and diag["weights"] is None
        assert diag["candidates"] == list(cfg.activation.candidates)
        assert diag["temperature"] == pytest.approx(cfg.activation.temperature)
        h = -np.sum(np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0), axis=1)
        top = w.max(axis=1)
        assert diag["entropy_mean"] == pytest.approx(h.mean(), abs=1e-6)
        assert diag["entropy_std"] == pytest.approx(h.std(), abs=1e-6)
        assert diag["max_weight_mean"] == pytest.approx(top.mean(), abs=1e-6)
        assert diag["max_weight_std"] == pytest.approx(top.std(), abs=1e-6)
        assert diag["effective_candidates"] == pytest.approx(math.exp(h.mean()), abs=1e-5)
        assert diag["collapsed"] == bool(np.all(top > 0.9))
        for k, name in enumerate(cfg.activation.candidates):
            assert diag["argmax_share"][name] == pytest.approx(np.mean(w.argmax(axis=1) == k))
            assert diag["weight_mean"][name] == pytest.approx(w[:, k].mean(), abs=1e-6)
        # The gates really depend on the input, so per-sample statistics are not trivially zero.
        assert diag["entropy_std"] > 0 and 1 < diag["effective_candidates"] < c


@pytest.mark.parametrize("variant, rows, n_rows", [("static_T0.7_lam0.01", "layer", 1), ("neuron_T1", "units", None)])
def test_static_gate_diagnostics_match_saved_logits(tiny_study, variant, rows, n_rows):
    folder = _run(tiny_study, variant)
    cfg, gates = _recompute_gates(folder)
    state = store.load_state(folder)
    for diag, g, width in zip(gate_diagnostics(folder), gates, cfg.backbone.hidden, strict=True):
        logits = state[f"blocks.{diag['layer'] - 1}.activation.logits"].double()
        w = torch.softmax(logits / cfg.activation.temperature, dim=-1).numpy().reshape(-1, 3)
        assert np.allclose(w, g.double().numpy().reshape(-1, 3), atol=1e-6)
        assert diag["rows"] == rows and diag["n_rows"] == (n_rows or width)
        assert np.allclose(np.asarray(diag["weights"]).reshape(-1, 3), w, atol=1e-6)
        h = -(w * np.log(w)).sum(axis=1)
        assert diag["entropy_mean"] == pytest.approx(h.mean(), abs=1e-6)
        assert diag["max_weight_mean"] == pytest.approx(w.max(axis=1).mean(), abs=1e-6)


def test_fixed_run_has_no_gated_layers(tiny_study):
    assert gate_diagnostics(_run(tiny_study, "baseline_tanh")) == []


def test_diagnostics_table(tiny_study):
    table = diagnostics_table(tiny_study)
    assert list(table.columns[: len(DIAGNOSTIC_COLUMNS)]) == list(DIAGNOSTIC_COLUMNS)
    # 4 gated variants x 3 seeds x 2 layers; fixed baselines contribute no rows.
    assert len(table) == 4 * 3 * 2
    assert set(table["variant"]) == {"static_T0.7_lam0.01", "neuron_T1", "input_T0.7", "input_layer_T1"}
    two = table[table["variant"] == "input_layer_T1"]
    assert two["candidates"].eq("relu+tanh").all() and two["argmax_sigmoid"].isna().all()
    shares = table[["argmax_relu", "argmax_tanh", "argmax_sigmoid"]].fillna(0).sum(axis=1)
    assert np.allclose(shares, 1.0)
    row = table[(table["variant"] == "input_T0.7") & (table["seed"] == 7) & (table["layer"] == 2)].iloc[0]
    diag = gate_diagnostics(_run(tiny_study, "input_T0.7"))[1]
    assert row["entropy_mean"] == diag["entropy_mean"] and row["weight_mean_tanh"] == diag["weight_mean"]["tanh"]


def test_missing_gate_columns_are_reported(tiny_study, tmp_path, reseal):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(_run(tiny_study, "input_T0.7"), folder)
    pred = pd.read_csv(folder / "predictions.csv").drop(columns=["gate2_tanh"])
    pred.to_csv(folder / "predictions.csv", index=False)
    reseal(folder)  # an edit the manifest knows about: the gate check itself must catch it
    with pytest.raises(RunStoreError, match="gate2_tanh"):
        gate_diagnostics(folder)


def test_entropy_nats_is_the_models_gate_entropy():
    """The numpy entropy of the results tables equals the torch definition the models train with, and scipy's."""
    import torch
    from scipy.special import xlogy

    from learnact.evaluation.diagnostics import entropy_nats
    from learnact.model.activations import gate_entropy

    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.full(4, 0.3), size=200)
    w[:5, 1:] = 0.0
    w[:5, 0] = 1.0  # one-hot rows: 0 log 0 = 0
    w[5:10, 2] = 0.0
    w[5:10] /= w[5:10].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(entropy_nats(w), gate_entropy(torch.from_numpy(w)).numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(entropy_nats(w), -xlogy(w, w).sum(axis=-1), rtol=1e-15, atol=0)
    assert (entropy_nats(w[:5]) == 0).all()
