"""Devices on the CPU: the one resolver, the reference trainer unchanged on "cpu", the CLI's --device error."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from learnact.config import ActivationConfig, TrainConfig
from learnact.data import split_dataset
from learnact.model import MLP, init_parameters_
from learnact.model.device import resolve_device
from learnact.model.inference import predict_proba
from learnact.model.state import tensor_state
from learnact.training import dataloader_permutation, fit, run_generator

NO_CUDA = not torch.cuda.is_available()


def test_auto_resolves_to_the_cpu_here_and_cpu_is_the_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("bad", ["gpu", "tpu", "", "cuda:x"])
def test_bad_device_values_are_refused_naming_the_value_and_the_choices(bad):
    with pytest.raises(ValueError, match=rf"unknown device {bad!r}; use one of cpu, cuda, auto"):
        resolve_device(bad)


def test_a_device_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="device must be a string"):
        resolve_device(0)  # type: ignore[arg-type]


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_cuda_without_cuda_names_the_fix():
    with pytest.raises(ValueError, match=r"device 'cuda' asked for, but no CUDA device is available .*use device "
                                         r"'cpu' or 'auto'"):
        resolve_device("cuda")


def _model_and_split(breast_cancer, seed=4):
    split = split_dataset(breast_cancer, seed)
    g = run_generator(seed)
    model = init_parameters_(MLP(split.n_features, (8, 4), 1, ActivationConfig(temperature=0.7)), g)
    return model, split, g


def test_fit_on_the_cpu_is_bit_identical_to_the_protocol_written_out_by_hand(breast_cancer):
    """``fit(device="cpu")`` against Adam, the DataLoader's shuffling and BCE, coded here independently."""
    cfg = TrainConfig(max_epochs=3, patience=10, batch_size=32, lr=1e-3, weight_decay=1e-4)
    model, split, g = _model_and_split(breast_cancer)
    hand, _, g_hand = _model_and_split(breast_cancer)
    result = fit(model, split, cfg, g, device="cpu")

    X, y = torch.from_numpy(split.X_train), torch.tensor(split.y_train, dtype=torch.float32).reshape(-1, 1)
    opt = torch.optim.Adam(hand.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    val_losses = []
    for _ in range(cfg.max_epochs):
        hand.train()
        perm = dataloader_permutation(g_hand, len(X))
        for lo in range(0, len(X), cfg.batch_size):
            idx = perm[lo:lo + cfg.batch_size]
            opt.zero_grad()
            F.binary_cross_entropy(torch.sigmoid(hand(X[idx])), y[idx]).backward()
            opt.step()
        hand.eval()
        with torch.no_grad():
            p = torch.sigmoid(hand(torch.from_numpy(split.X_val)))
            val_losses.append(float(F.binary_cross_entropy(p, torch.tensor(split.y_val, dtype=torch.float32)
                                                            .reshape(-1, 1))))
    assert val_losses == sorted(val_losses, reverse=True), "the hand loop's last epoch must be its best"
    assert [r.val_loss for r in result.history] == val_losses
    for (name, a), b in zip(tensor_state(model).items(), tensor_state(hand).values(), strict=True):
        assert torch.equal(a, b), name
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_predict_proba_returns_cpu_arrays_and_gates(breast_cancer):
    model, split, _ = _model_and_split(breast_cancer)
    prob, gates = predict_proba(model, split.X_test)
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(split.X_test))).reshape(-1).double().numpy()
    np.testing.assert_array_equal(prob, expected)
    assert all(g is None or g.device.type == "cpu" for g in gates)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_run_device_cuda_without_cuda_exits_2_with_one_line(tmp_path):
    config = tmp_path / "study.toml"
    config.write_text('name = "d"\nseeds = [0]\n[data]\ndataset = "breast_cancer"\n'
                      '[[variants]]\nname = "relu"\nkind = "fixed"\nactivation = "relu"\n'
                      '[train]\nmax_epochs = 2\n')
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "learnact", "run", "--config", str(config), "--out", str(out),
                           "--engine", "sequential", "--device", "cuda", "--no-report", "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("learnact: error: device 'cuda' asked for, but no CUDA device is available")
    assert not (out / "runs").exists()


def test_run_device_refuses_a_bad_value_and_a_vectorised_engine_off_the_cpu(tmp_path):
    from learnact.exceptions import ConfigError
    from learnact.experiment.engines import engine_device

    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        engine_device("sequential", "gpu")
    assert engine_device("vectorized", "cpu") == torch.device("cpu")
    if not NO_CUDA:
        with pytest.raises(ConfigError, match="engine 'vectorized' trains on the CPU only"):
            engine_device("vectorized", "cuda")


def test_device_is_not_part_of_a_run_and_cpu_results_do_not_change(tmp_path):
    """A study trained with ``device="auto"`` (the CPU here) writes the same run ids and metrics as without it."""
    import json

    from learnact.experiment import run_study, study_from_dict

    study = study_from_dict({"name": "d", "seeds": [0, 1], "backbone": {"hidden": [6]},
                             "train": {"max_epochs": 3, "patience": 3},
                             "variants": [{"name": "tanh", "kind": "fixed", "activation": "tanh"},
                                          {"name": "gated", "gate": "neuron"}]})
    run_study(study, tmp_path / "plain", engine="sequential")
    run_study(study, tmp_path / "auto", engine="sequential", device="auto" if NO_CUDA else "cpu")

    def metrics(folder):
        return {p.name: {k: v for k, v in json.loads((p / "metrics.json").read_text()).items()
                         if k not in ("train_time_s", "peak_memory_mb", "step_latency_ms")}
                for p in sorted((folder / "runs").iterdir())}

    plain, auto = metrics(tmp_path / "plain"), metrics(tmp_path / "auto")
    assert list(plain) == list(auto) and len(plain) == 4
    assert json.dumps(plain, sort_keys=True) == json.dumps(auto, sort_keys=True)
    for run in plain:
        a = (tmp_path / "plain" / "runs" / run / "weights.safetensors").read_bytes()
        assert a == (tmp_path / "auto" / "runs" / run / "weights.safetensors").read_bytes()
