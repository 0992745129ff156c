"""Learned activation shapes: the function each hidden layer applies, per variant and seed.

Gated mixtures: ``phi(x) = sum_k g_k phi_k(x)``, with the candidates and the
mixture from :mod:`learnact.model.activations` (:func:`get_candidate`,
:func:`mix_candidates`), the same code the models use, applied to the gate
weights stored in the run folders. Learnable families: the family's own
module rebuilt with each run's saved parameters
(:meth:`~learnact.reporting.study_view.RunView.family_module`), evaluated with
:meth:`~learnact.model.ParametricActivation.curves`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ._plot import next_layer_panel, wrap_name
from .fig_gates import layer_panels
from .study_view import NothingToShow, RunView, StudyView
from .style import candidate_color, new_figure, variant_colors

__all__ = ["X_RANGE", "effective_activation", "family_curves", "activation_shapes_figure"]

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
    import torch

    from ..model.activations import get_candidate, mix_candidates

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


def family_curves(run: RunView, layer: int, x: np.ndarray) -> np.ndarray:
    """The learned function of each parameter set of a family run's hidden ``layer`` at ``x``.

    Shape:
        - x: ``(p,)``; output: ``(m, p)``: ``m`` units for a per-unit family, 1 per layer
    """
    import torch

    module = run.family_module(layer)
    with torch.no_grad():
        out = module.curves(torch.as_tensor(np.asarray(x), dtype=torch.float32))
    return out.double().numpy().T


def _family_panel(ax, view: StudyView, v: str, layer: int, x: np.ndarray, color) -> bool:
    """Draw a learnable family's learned function for every seed; True when it has an initial-shape claim."""
    import torch

    per_seed = [family_curves(run, layer, x) for run in view.runs[v]]
    start = view.runs[v][0].family_module(layer).starts_near()
    if start is not None:
        with torch.no_grad():
            ax.plot(x, start.function(torch.as_tensor(x)).numpy(), color="0.45", lw=0.9, ls=":")
    pooled = np.concatenate(per_seed)
    for curves in per_seed:
        ax.plot(x, np.median(curves, axis=0), color=color, lw=1.1, alpha=0.85)
    if pooled.shape[0] > 1:
        lo, hi = np.percentile(pooled, (10, 90), axis=0)
        ax.fill_between(x, lo, hi, color=color, alpha=0.25, lw=0)
    return start is not None


def _title(view: StudyView, v: str, layer: int) -> str:
    if view.kind(v) != "family":
        return f"{wrap_name(v, 22)}\nlayer {layer}"
    act = view.config(v).activation
    return f"{wrap_name(v, 22)}\n{act.kind} (per {act.family_params().granularity}), layer {layer}"


def activation_shapes_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 7: the learned activation of each gated or learnable-family layer.

    Gated mixtures, candidates faint behind. Static gates: one line per seed
    (per-neuron gates: the mean over units, with the 10th-90th percentile
    band over units of all seeds). Input gates: the mean function over test
    samples per seed, and the 5th-95th percentile band over the test samples
    of all seeds. Learnable families: one line per seed (per-unit families:
    the median over units, with the 10th-90th percentile band over the units
    of all seeds), the family's initial shape dotted behind.
    """
    variants = view.gated + view.families
    if not variants:
        raise NothingToShow("the study has no gated variant and no learnable family")
    layers = sorted({int(g["layer"]) for v in view.gated for g in view.gated_layers(v)}
                    | {i + 1 for v in view.families for i in range(len(view.config(v).backbone.hidden))})
    x = np.linspace(*X_RANGE, 241)
    colors = variant_colors(view)
    fig = new_figure(1, 1)
    axes, n_cols = layer_panels(fig, len(variants), len(layers))
    n_grid_rows = (len(variants) * len(layers) + n_cols - 1) // n_cols
    fig.set_size_inches(2.15 * n_cols + 0.3, 1.9 * n_grid_rows + 0.6)
    seen: list[str] = []
    initial = False
    for i, v in enumerate(variants):
        family = view.kind(v) == "family"
        gate = None if family else view.config(v).activation.gate
        first: Axes | None = None
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            ax.set_title(_title(view, v, layer), fontsize=7.5)
            info = next((g for g in view.gated_layers(v) if int(g["layer"]) == layer), None)
            if family and layer <= len(view.config(v).backbone.hidden):
                initial |= _family_panel(ax, view, v, layer, x, colors[v])
            elif info is None:
                ax.set_axis_off()
                continue
            else:
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
            first = next_layer_panel(ax, first, "\u03c6(x)", ylabel_size=8, share_y=True)  # one y scale per variant
    handles = [Line2D([], [], color="0.3", lw=1.1, label="learned \u03c6 (one line per seed)"),
               Patch(color="0.3", alpha=0.25, label="spread over samples / units")]
    if initial:
        handles.append(Line2D([], [], color="0.45", lw=0.9, ls=":", label="family's initial shape"))
    handles += [Line2D([], [], color=candidate_color(n), lw=0.8, ls=":", label=n) for n in seen]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))
    details = []
    if view.gated:
        details.append("Gated mixtures: dotted, the candidate functions. Input gates: mean over test samples per "
                       "seed, band from the 5th to the 95th percentile over the test samples of all seeds; "
                       "per-neuron gates: mean over units, band from the 10th to the 90th percentile over units.")
    if view.families:
        details.append("Learnable families: the family's function with each seed's learned parameters; per-unit "
                       "families: the median over units per seed, band from the 10th to the 90th percentile over "
                       "the units of all seeds; dotted grey, the shape the family starts from.")
    return fig, " ".join(details)
