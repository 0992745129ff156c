"""A small CNN on scikit-learn's 8x8 digits: ReLU against per-channel gated activations, seed by seed.

For each seed the script builds one ReLU network, copies it, and converts the
copy's ReLUs into per-channel gated mixtures of relu, tanh and sigmoid (one
set of gate logits per channel, read along ``dim=1`` of the ``(N, C, H, W)``
features). Both networks therefore start from the same weights, see the same
train/validation/test split and the same mini-batch order; they differ only
in their activations. Training uses Adam with early stopping on the
validation loss (the best epoch's weights are kept) and each network is
scored on the test rows.

Writes ``OUT/results.csv`` (one row per run: variant, seed, accuracy,
log_loss, epochs, train_time_s, n_train, n_test) and ``OUT/replaced.json``
(the ReLU modules replaced in the gated network), prints a summary, and
suggests the paired comparison::

    python examples/cnn_digits.py --out cnn_digits
    learnact compare cnn_digits/results.csv --reference relu
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

import learnact

CANDIDATES = ("relu", "tanh", "sigmoid")
COLUMNS = ("variant", "seed", "accuracy", "log_loss", "epochs", "train_time_s", "n_train", "n_test")


def small_cnn(act: Callable[[int], nn.Module] = lambda width: nn.ReLU()) -> nn.Sequential:
    """Conv(1->8) -> act -> Conv(8->16) -> act -> max-pool 2 -> Linear(256->10).

    ``act(width)`` builds the activation after a convolution with ``width``
    output channels. Input ``(N, 1, 8, 8)``, output logits ``(N, 10)``.
    """
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), act(8), nn.Conv2d(8, 16, 3, padding=1), act(16),
                      nn.MaxPool2d(2)),
        nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 10)),
    )


def per_channel_gate(width: int, dim: int = 1) -> nn.Module:
    """A gated mixture of :data:`CANDIDATES` with one gate per channel along ``dim``."""
    return learnact.GatedActivation(CANDIDATES, gate="neuron", width=width, dim=dim)


def gated_twin(relu_net: nn.Sequential) -> tuple[nn.Module, list[str]]:
    """A copy of ``relu_net`` with every ``nn.ReLU`` turned into a per-channel gate, and the paths replaced.

    :func:`learnact.convert` reads each width from the convolution before the
    ReLU; the copy keeps ``relu_net``'s weights, and ``relu_net`` is untouched.
    """
    net, replaced = learnact.convert(relu_net, activation=per_channel_gate, types=(nn.ReLU,), dim=1)
    return net, [r.path for r in replaced]


def splits(seed: int) -> dict[str, tuple[Tensor, Tensor]]:
    """Stratified 60/20/20 train/validation/test split of the digits for ``seed``; pixels scaled to [0, 1]."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    idx = np.arange(len(y))
    train, rest = train_test_split(idx, test_size=0.4, random_state=seed, stratify=y)
    val, test = train_test_split(rest, test_size=0.5, random_state=seed, stratify=y[rest])
    return {k: (torch.from_numpy(x[i]), torch.from_numpy(y[i])) for k, i in
            (("train", train), ("val", val), ("test", test))}


def fit(net: nn.Module, data: dict[str, tuple[Tensor, Tensor]], seed: int, epochs: int, patience: int,
        lr: float = 3e-3, batch_size: int = 64) -> tuple[int, float]:
    """Adam on mini-batches (order fixed by ``seed``), early stopping on validation loss; returns (epochs, seconds)."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x, y = data["train"]
    order = torch.Generator().manual_seed(seed)
    best, best_state, waited, ran = math.inf, copy.deepcopy(net.state_dict()), 0, 0
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for batch in torch.randperm(len(y), generator=order).split(batch_size):
            opt.zero_grad()
            F.cross_entropy(net(x[batch]), y[batch]).backward()
            opt.step()
        ran += 1
        net.eval()
        with torch.no_grad():
            val = float(F.cross_entropy(net(data["val"][0]), data["val"][1]))
        if val < best:
            best, best_state, waited = val, copy.deepcopy(net.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    net.load_state_dict(best_state)
    return ran, time.perf_counter() - start


def score(net: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """Test accuracy and log loss (mean cross-entropy, nats)."""
    net.eval()
    with torch.no_grad():
        logits = net(x)
    return float((logits.argmax(1) == y).float().mean()), float(F.cross_entropy(logits, y))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("cnn_digits"), help="output folder (created)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--epochs", type=int, default=100, help="maximum epochs")
    parser.add_argument("--patience", type=int, default=5, help="epochs without a better validation loss")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, replaced = [], []
    for seed in range(args.seeds):
        data = splits(seed)
        torch.manual_seed(seed)
        relu_net = small_cnn()
        gated_net, replaced = gated_twin(relu_net)
        for variant, net in (("relu", relu_net), ("gated", gated_net)):
            epochs, seconds = fit(net, data, seed, args.epochs, args.patience)
            accuracy, loss = score(net, *data["test"])
            rows.append({"variant": variant, "seed": seed, "accuracy": accuracy, "log_loss": loss, "epochs": epochs,
                         "train_time_s": seconds, "n_train": len(data["train"][1]), "n_test": len(data["test"][1])})
            print(f"seed {seed} {variant:>5}: accuracy {accuracy:.4f}, log loss {loss:.4f}, {epochs} epochs, "
                  f"{seconds:.1f} s", flush=True)
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "replaced.json").write_text(json.dumps(replaced) + "\n")
    print(f"\nreplaced by per-channel gates: {', '.join(replaced)}; the last seed's gates, averaged over "
          f"channels:\n{learnact.summarize(gated_net)}")
    for variant in ("relu", "gated"):
        acc = np.array([r["accuracy"] for r in rows if r["variant"] == variant])
        sd = f" ± {acc.std(ddof=1):.4f}" if len(acc) > 1 else ""
        print(f"{variant:>5}: test accuracy {acc.mean():.4f}{sd} over {len(acc)} seeds")
    print(f"\nwrote {args.out / 'results.csv'}; compare the variants seed by seed with:\n"
          f"  learnact compare {args.out / 'results.csv'} --reference relu")


if __name__ == "__main__":
    main()
