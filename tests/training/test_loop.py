import math

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from learnact.config import ActivationConfig, RunConfig, TrainConfig
from learnact.data import split_dataset
from learnact.experiment import build_artifacts, train_one
from learnact.training import dataloader_permutation, run_generator


def test_shuffling_stream_matches_a_real_dataloader():
    n = 37
    with torch.random.fork_rng():
        torch.manual_seed(5)
        torch.randn(100)  # stands for the model's initial draws
        loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=8, shuffle=True)
        epochs = [torch.cat([b[0] for b in loader]) for _ in range(3)]
    g = run_generator(5)
    torch.randn(100, generator=g)
    ours = [dataloader_permutation(g, n) for _ in range(3)]
    for a, b in zip(epochs, ours, strict=True):
        assert torch.equal(a, b)


def _run(breast_cancer, **train):
    cfg = RunConfig(variant="v", seed=3, activation=ActivationConfig(temperature=0.7),
                    train=TrainConfig(max_epochs=train.pop("max_epochs", 25), patience=train.pop("patience", 5), **train))
    return train_one(cfg, split_dataset(breast_cancer, 3))


def test_same_seed_same_results(breast_cancer):
    a, b = _run(breast_cancer), _run(breast_cancer)
    ma, mb = build_artifacts(a).metrics, build_artifacts(b).metrics
    for k in ("accuracy", "f1", "roc_auc", "log_loss", "best_epoch", "epochs_run"):
        assert ma[k] == mb[k]
    assert [r.val_loss for r in a.fit.history] == [r.val_loss for r in b.fit.history]


def test_early_stopping_and_restore_best(breast_cancer):
    t = _run(breast_cancer, max_epochs=400, patience=3, lr=0.05)
    hist = [r.val_loss for r in t.fit.history]
    assert t.fit.epochs_run < 400  # stopped early
    best = int(np.argmin(hist)) + 1
    assert t.fit.best_epoch == best and t.fit.epochs_run == best + 3
    # the restored model has the best validation loss
    sp = t.split
    with torch.no_grad():
        p = torch.sigmoid(t.model(torch.from_numpy(sp.X_val))).reshape(-1)
        val = torch.nn.functional.binary_cross_entropy(p, torch.tensor(sp.y_val, dtype=torch.float32))
    assert math.isclose(float(val), t.fit.best_val_loss, rel_tol=1e-6)


def test_history_records_loss_parts_and_gates(breast_cancer):
    t = _run(breast_cancer, max_epochs=4, entropy_weight=0.5)
    r = t.fit.history[0]
    assert r.epoch == 1 and len(t.fit.history) == 4
    assert math.isclose(r.train_loss, r.train_task + 0.5 * r.train_entropy, rel_tol=1e-9)
    assert len(r.gate_weights) == 2 and math.isclose(sum(r.gate_weights[0]), 1.0, rel_tol=1e-5)
    assert 0 < r.gate_entropy[0] <= math.log(3) + 1e-6


def test_entropy_sign_convention(breast_cancer):
    """lambda > 0 pushes toward one candidate, lambda < 0 toward blending."""
    sel = _run(breast_cancer, max_epochs=30, patience=30, entropy_weight=0.5, lr=0.02)
    blend = _run(breast_cancer, max_epochs=30, patience=30, entropy_weight=-0.5, lr=0.02)
    h_sel = sum(sel.fit.history[-1].gate_entropy)
    h_blend = sum(blend.fit.history[-1].gate_entropy)
    assert h_sel < h_blend
    assert h_sel < 2 * math.log(3) - 0.05


def test_diverging_run_is_recorded_not_fatal(breast_cancer):
    """A non-finite loss stops training; the run is kept, flagged, and its metrics are NaN, not an error."""
    import dataclasses

    split = split_dataset(breast_cancer, 3)
    X = split.X_train.copy()
    X[5, 0] = np.inf  # poisons the first mini-batch that contains row 5
    bad = dataclasses.replace(split, X_train=X)
    cfg = RunConfig(variant="v", seed=3, train=TrainConfig(max_epochs=20, patience=20))
    t = train_one(cfg, bad)
    assert t.fit.diverged_epoch == 1 and t.fit.epochs_run == 1
    art = build_artifacts(t)
    assert art.metrics["diverged_epoch"] == 1
    assert math.isnan(art.metrics["accuracy"]) and math.isnan(art.metrics["roc_auc"])
