"""Learned activation shapes: the effective function ``phi(x) = sum_k g_k phi_k(x)`` of each layer.

The candidates and the mixture come from :mod:`learnact.model.activations`
(:func:`get_candidate`, :func:`mix_candidates`), the same code the models
use, applied to the gate weights stored in the run folders.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..model.activations import get_candidate, mix_candidates
from ._plot import wrap_name
from .fig_gates import layer_panels
from .study_view import NothingToShow, RunView, StudyView
from .style import candidate_color, new_figure, variant_colors

__all__ = ["X_RANGE", "effective_activation", "activation_shapes_figure"]

X_RANGE = (-4.0, 4.0)
"""Pre-activation range drawn."""


def effective_activation(x: np.ndarray, weights: np.ndarray, candidates: list[str]) -> np.ndarray:
    """``phi(x) = sum_k g_k phi_k(x)`` for one or many weight vectors.

    Args:
        x: Pre-activation values.
        weights: Mixture weights ``(c,)``, or ``(m, c)`` for ``m`` units or samples.
        candidates: The ``c`` candidate names, in the weights' order.

    Returns:
        ``(p,)`` for a single weight vector, else ``(m, p)``.

    Shape:
        - x: ``(p,)``
        - weights: ``(c,)`` or ``(m, c)``
    """
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    if w.shape[-1] != len(candidates):
        raise ValueError(f"got {len(candidates)} candidates {candidates} for weights of shape {tuple(w.shape)}")
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if w.ndim == 2:
        w = w[:, None, :]
    with torch.no_grad():
        return mix_candidates(xt, w, [get_candidate(n) for n in candidates]).numpy()


def _static_weights(run: RunView, layer: int) -> tuple[np.ndarray, list[str]] | None:
    g = next((g for g in run.gates() if int(g["layer"]) == layer and g.get("weights") is not None), None)
    if g is None:
        return None
    return np.asarray(g["weights"], dtype=np.float64), list(g["candidates"])


def activation_shapes_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 7: the learned activation of each gated layer, candidates faint behind.

    Static gates: one line per seed (per-neuron gates: the mean over units,
    with the 10th-90th percentile band over units of all seeds). Input gates:
    the mean function over test samples per seed, and the 5th-95th
    percentile band over the test samples of all seeds.
    """
    variants = view.gated
    if not variants:
        raise NothingToShow("the study has no gated variant")
    layers = sorted({int(g["layer"]) for v in variants for g in view.gated_layers(v)})
    x = np.linspace(*X_RANGE, 241)
    colors = variant_colors(view)
    fig = new_figure(1, 1)
    axes, n_cols = layer_panels(fig, len(variants), len(layers))
    n_grid_rows = (len(variants) * len(layers) + n_cols - 1) // n_cols
    fig.set_size_inches(2.15 * n_cols + 0.3, 1.9 * n_grid_rows + 0.6)
    seen: list[str] = []
    for i, v in enumerate(variants):
        gate = view.config(v).activation.gate
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            ax.set_title(f"{wrap_name(v, 22)}\nlayer {layer}", fontsize=7.5)
            info = next((g for g in view.gated_layers(v) if int(g["layer"]) == layer), None)
            if info is None:
                ax.set_axis_off()
                continue
            names = list(info["candidates"])
            seen.extend(n for n in names if n not in seen)
            for name in names:
                ax.plot(x, effective_activation(x, np.eye(len(names))[names.index(name)], names),
                        color=candidate_color(name), lw=0.8, ls=":", alpha=0.9)
            spread = []
            for run in view.runs[v]:
                if gate == "input":
                    w = run.sample_gates(layer, names)
                else:
                    found = _static_weights(run, layer)
                    w = found[0] if found is not None else None
                if w is None:
                    continue
                curves = effective_activation(x, w, names)
                if curves.ndim == 2:
                    spread.append(curves)
                    curves = curves.mean(axis=0)
                ax.plot(x, curves, color=colors[v], lw=1.1, alpha=0.85)
            if spread:
                pooled = np.concatenate(spread)
                q = (5, 95) if gate == "input" else (10, 90)
                lo, hi = np.percentile(pooled, q, axis=0)
                ax.fill_between(x, lo, hi, color=colors[v], alpha=0.25, lw=0)
            ax.axhline(0, color="0.6", lw=0.5)
            ax.axvline(0, color="0.6", lw=0.5)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("Pre-activation x", fontsize=7.5)
            if j == 0:
                ax.set_ylabel("\u03c6(x)", fontsize=8)
    handles = [Line2D([], [], color="0.3", lw=1.1, label="learned \u03c6 (one line per seed)"),
               Patch(color="0.3", alpha=0.25, label="spread over samples / units")]
    handles += [Line2D([], [], color=candidate_color(n), lw=0.8, ls=":", label=n) for n in seen]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))
    detail = ("Dotted: the candidate functions. Input gates: mean over test samples per seed, band from "
              "the 5th to the 95th percentile over the test samples of all seeds; per-neuron gates: mean over "
              "units, band from the 10th to the 90th percentile over units.")
    return fig, detail
