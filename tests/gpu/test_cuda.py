"""The same small study on CUDA and on the CPU (issue 14). Every test is marked ``gpu``.

Skipped on a machine without CUDA. Runnable alone on a GPU machine:
``python -m pytest -q tests/gpu -p no:cacheprovider`` (no other test file needed).

Tolerance: CUDA kernels sum in other orders than the CPU's, so the two runs
drift apart by float32 rounding; over the few epochs here the test losses
agree within 1e-3 (absolute) and the accuracies within two of the 143 test rows.
Stopping epochs may differ and are not compared.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available() is False)"),
]

LOSS_ATOL = 1e-3
ACC_ATOL = 2 / 143 + 1e-9  # two of the 143 test rows


def _study():
    from learnact.experiment import study_from_dict

    return study_from_dict({
        "name": "cuda", "seeds": [0, 1], "data": {"dataset": "breast_cancer"}, "backbone": {"hidden": [16, 8]},
        "train": {"max_epochs": 8, "patience": 8},
        "variants": [{"name": "relu", "kind": "fixed", "activation": "relu"},
                     {"name": "gated", "gate": "neuron", "temperature": 0.7}],
    })


def _metrics(folder, device):
    """The study's per-run metrics, trained on ``device`` with the reference trainer, by (variant, seed)."""
    from learnact.evaluation import per_run, tidy_results
    from learnact.experiment import run_study

    run_study(_study(), folder, engine="sequential", device=device)
    return per_run(tidy_results(folder)).set_index(["variant", "seed"]).sort_index()


def test_the_same_study_on_cuda_and_cpu_agrees(tmp_path):
    cpu = _metrics(tmp_path / "cpu", "cpu")
    cuda = _metrics(tmp_path / "cuda", "cuda")
    assert list(cpu.index) == list(cuda.index) and len(cpu) == 4
    assert (cuda["status"] == "finished").all()
    np.testing.assert_allclose(cuda["log_loss"], cpu["log_loss"], atol=LOSS_ATOL)
    np.testing.assert_allclose(cuda["best_val_loss"], cpu["best_val_loss"], atol=LOSS_ATOL)
    np.testing.assert_allclose(cuda["accuracy"], cpu["accuracy"], atol=ACC_ATOL)


def test_reference_trainer_on_cuda_follows_the_cpu_epoch_by_epoch():
    from learnact.config import ActivationConfig, TrainConfig
    from learnact.data import load_dataset, split_dataset
    from learnact.model import MLP, init_parameters_
    from learnact.model.inference import predict_proba
    from learnact.training import fit, run_generator

    split = split_dataset(load_dataset("breast_cancer"), 3)
    cfg = TrainConfig(max_epochs=5, patience=5)
    results = {}
    for device in ("cpu", "cuda"):
        g = run_generator(3)
        model = init_parameters_(MLP(split.n_features, (16, 8), 1, ActivationConfig(gate="neuron")), g)
        results[device] = (fit(model, split, cfg, g, device=device), model)
    (cpu, m_cpu), (cuda, m_cuda) = results["cpu"], results["cuda"]
    assert next(m_cuda.parameters()).device.type == "cuda"
    np.testing.assert_allclose([r.val_loss for r in cuda.history], [r.val_loss for r in cpu.history],
                               atol=LOSS_ATOL)
    p_cuda, gates = predict_proba(m_cuda, split.X_test)  # inputs moved to the model's device, results on the CPU
    p_cpu, _ = predict_proba(m_cpu, split.X_test)
    assert isinstance(p_cuda, np.ndarray) and all(g is None or g.device.type == "cpu" for g in gates)
    np.testing.assert_allclose(p_cuda, p_cpu, atol=LOSS_ATOL)


def test_estimator_on_cuda_matches_the_cpu():
    from sklearn.datasets import load_breast_cancer

    from learnact.sklearn import GatedMLPClassifier

    X, y = load_breast_cancer(return_X_y=True)
    kw = dict(hidden=(16,), max_epochs=6, gate="neuron", random_state=0)
    cpu = GatedMLPClassifier(device="cpu", **kw).fit(X[:450], y[:450])
    cuda = GatedMLPClassifier(device="cuda", **kw).fit(X[:450], y[:450], sample_weight=np.ones(450))
    assert next(cuda.model_.parameters()).device.type == "cuda"
    np.testing.assert_allclose(cuda.loss_curve_, cpu.loss_curve_, atol=LOSS_ATOL)
    np.testing.assert_allclose(cuda.predict_proba(X[450:]), cpu.predict_proba(X[450:]), atol=LOSS_ATOL)
    auto = GatedMLPClassifier(device="auto", **kw).fit(X[:450], y[:450])
    assert next(auto.model_.parameters()).device.type == "cuda"
