"""Inference with a trained :class:`~learnact.model.MLP`: class probabilities and gate weights."""

from __future__ import annotations

import numpy as np
import torch

from .backbone import MLP

__all__ = ["predict_output", "predict_proba"]


def predict_proba(model: MLP, X: np.ndarray, *, dtype: torch.dtype = torch.float32
                  ) -> tuple[np.ndarray, list[torch.Tensor | None]]:
    """Class probabilities and per-layer gate weights for ``X``.

    Puts ``model`` in eval mode and runs it without gradients, in ``dtype``,
    on the device its parameters are on (CPU or CUDA); the results come back
    on the CPU.

    Args:
        model: The trained network.
        X: Features, shape ``(n, d)`` (scaled as the model was trained).
        dtype: Precision of the forward pass; the model's parameters must be in it (``torch.float64``: a
            copy of the model converted with ``.double()``).

    Returns:
        ``prob`` of shape ``(n,)`` (binary: positive class) or ``(n, k)``, float64, and
        the gate weights per hidden layer as the model produced them, on the CPU (``None`` for a layer
        without gates).
    """
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        logits, gates = model.forward_with_gates(torch.as_tensor(X, dtype=dtype).to(device))
        if logits.shape[-1] == 1:
            prob = torch.sigmoid(logits).reshape(-1)
        else:
            prob = torch.softmax(logits, dim=-1)
    return prob.double().cpu().numpy(), [g.cpu() if g is not None else None for g in gates]


def predict_output(model: MLP, X: np.ndarray, task: str = "classification", *,
                   dtype: torch.dtype = torch.float32) -> tuple[np.ndarray, list[torch.Tensor | None]]:
    """What the model predicts for its task: class probabilities (:func:`predict_proba`) or, for a
    regression task, the identity output (in the standardised target units the model was trained on).

    Runs on the device of the model's parameters; the results come back on the CPU.

    Args:
        dtype: Precision of the forward pass, as for :func:`predict_proba`.

    Returns:
        ``(prediction, gates)``; a regression prediction has shape ``(n,)``, float64.
    """
    if task != "regression":
        return predict_proba(model, X, dtype=dtype)
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        out, gates = model.forward_with_gates(torch.as_tensor(X, dtype=dtype).to(device))
    return out.reshape(-1).double().cpu().numpy(), [g.cpu() if g is not None else None for g in gates]
