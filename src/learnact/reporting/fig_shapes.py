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

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ._plot import draw_lines, next_layer_panel, wrap_name
from .fig_gates import layer_panels
from .study_view import NothingToShow, RunView, StudyView
from .style import candidate_color, new_figure, variant_colors

__all__ = ["X_RANGE", "ShapePanel", "effective_activation", "family_curves", "shape_panels",
           "activation_shapes_figure"]

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


@dataclass(frozen=True)
class ShapePanel:
    """What one panel of the activation-shapes figure draws, as arrays (``(p,)`` each, on the figure's x grid).

    Attributes:
        lines: The learned function per seed (a mean or median over units or samples where there are many).
        band: Lower and upper percentile over the units or samples of all seeds, or ``None``.
        candidates: The gated mixture's candidates as ``(name, phi_k(x))``, drawn dotted behind.
        initial: A family's initial shape, drawn dotted grey behind, or ``None``.
    """

    lines: tuple[np.ndarray, ...]
    band: tuple[np.ndarray, np.ndarray] | None = None
    candidates: tuple[tuple[str, np.ndarray], ...] = ()
    initial: np.ndarray | None = None


def _family_panel(view: StudyView, v: str, layer: int, x: np.ndarray) -> ShapePanel:
    """A learnable family's learned function for every seed, and its initial shape where it claims one."""
    import torch

    per_seed = [family_curves(run, layer, x) for run in view.runs[v]]
    start = view.runs[v][0].family_module(layer).starts_near()
    initial = None
    if start is not None:
        with torch.no_grad():
            initial = start.function(torch.as_tensor(x)).numpy()
    pooled = np.concatenate(per_seed)
    band = tuple(np.percentile(pooled, (10, 90), axis=0)) if pooled.shape[0] > 1 else None
    return ShapePanel(tuple(np.median(c, axis=0) for c in per_seed), band, initial=initial)


def _gated_panel(view: StudyView, v: str, info: dict, layer: int, x: np.ndarray) -> ShapePanel:
    """A gated layer's mixture per seed (input gates: mean over test samples), with the candidates."""
    names = list(info["candidates"])
    gate = view.config(v).activation.gate
    candidates = tuple((n, effective_activation(x, np.eye(len(names))[k], names)) for k, n in enumerate(names))
    lines, spread = [], []
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
        lines.append(curves)
    band = None
    if spread:
        band = tuple(np.percentile(np.concatenate(spread), (5, 95) if gate == "input" else (10, 90), axis=0))
    return ShapePanel(tuple(lines), band, candidates)


_PANELS = "_activation_shape_panels"  # the key of shape_panels' result in a StudyView's __dict__


def shape_panels(view: StudyView) -> dict[tuple[str, int], ShapePanel | None]:
    """Every panel of the activation-shapes figure, by ``(variant, layer)``; ``None`` where a layer has no gate.

    The part of the figure that evaluates activations with PyTorch (the
    candidates and family modules the models use), computed once per view and
    kept on it: a view pickled after this call carries the panels, so a report
    worker draws the figure without importing torch (about 2 s).
    :func:`~learnact.reporting.figures.build_figures` calls it in the calling
    process when that process has torch loaded already (``learnact run``,
    after training).

    Raises:
        NothingToShow: The study has no gated variant and no learnable family.
    """
    cached = view.__dict__.get(_PANELS)
    if cached is not None:
        return cached
    variants = view.gated + view.families
    if not variants:
        raise NothingToShow("the study has no gated variant and no learnable family")
    x = _x_grid()
    layers = _layers(view)
    panels: dict[tuple[str, int], ShapePanel | None] = {}
    for v in variants:
        family = view.kind(v) == "family"
        for layer in layers:
            info = next((g for g in view.gated_layers(v) if int(g["layer"]) == layer), None)
            if family and layer <= len(view.config(v).backbone.hidden):
                panels[v, layer] = _family_panel(view, v, layer, x)
            elif info is None:
                panels[v, layer] = None
            else:
                panels[v, layer] = _gated_panel(view, v, info, layer, x)
    view.__dict__[_PANELS] = panels
    return panels


def _x_grid() -> np.ndarray:
    return np.linspace(*X_RANGE, 241)


def _layers(view: StudyView) -> list[int]:
    return sorted({int(g["layer"]) for v in view.gated for g in view.gated_layers(v)}
                  | {i + 1 for v in view.families for i in range(len(view.config(v).backbone.hidden))})


def _draw_panel(ax: Axes, panel: ShapePanel, x: np.ndarray, color) -> None:
    if panel.initial is not None:
        ax.plot(x, panel.initial, color="0.45", lw=0.9, ls=":")
    draw_lines(ax, [(curve, candidate_color(name)) for name, curve in panel.candidates], x, lw=0.8, ls=":", alpha=0.9)
    draw_lines(ax, [(curve, color) for curve in panel.lines], x, lw=1.1, alpha=0.85)
    if panel.band is not None:
        ax.fill_between(x, *panel.band, color=color, alpha=0.25, lw=0)


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
    panels = shape_panels(view)
    variants = view.gated + view.families
    layers = _layers(view)
    x = _x_grid()
    colors = variant_colors(view)
    fig = new_figure(1, 1)
    axes, n_cols = layer_panels(fig, len(variants), len(layers))
    n_grid_rows = (len(variants) * len(layers) + n_cols - 1) // n_cols
    fig.set_size_inches(2.15 * n_cols + 0.3, 1.9 * n_grid_rows + 0.6)
    seen: list[str] = []
    initial = False
    for i, v in enumerate(variants):
        first: Axes | None = None
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            ax.set_title(_title(view, v, layer), fontsize=7.5)
            panel = panels[v, layer]
            if panel is None:
                ax.set_axis_off()
                continue
            _draw_panel(ax, panel, x, colors[v])
            initial |= panel.initial is not None
            seen.extend(n for n, _ in panel.candidates if n not in seen)
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
