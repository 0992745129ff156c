"""Learned activation shapes as arrays: the function each hidden layer applies, per variant and seed.

Gated mixtures: ``phi(x) = sum_k g_k phi_k(x)``, with the candidates and the
mixture from :mod:`learnact.model.activations` (:func:`get_candidate`,
:func:`mix_candidates`), the same code the models use, applied to the gate
weights stored in the run folders. Learnable families: the family's own
module rebuilt with each run's saved parameters
(:meth:`~learnact.reporting.study_view.RunView.family_module`), evaluated with
:meth:`~learnact.model.ParametricActivation.curves`.

PyTorch evaluates them and nothing here draws (no matplotlib): the process
that trained a study computes the panels before the report's workers draw
them (:mod:`.fig_shapes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .study_view import NothingToShow, RunView, StudyView

__all__ = ["X_RANGE", "ShapePanel", "effective_activation", "family_curves", "shape_panels", "shape_layers",
           "x_grid"]

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
    # the spread over units, for a per-unit family only: a per-layer family has one curve per seed, and pooling
    # those drew the spread over seeds under the legend's "spread over samples / units"
    pooled = np.concatenate(per_seed)
    band = tuple(np.percentile(pooled, (10, 90), axis=0)) if any(c.shape[0] > 1 for c in per_seed) else None
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
        NothingToShow: The study has no gated variant and no learnable family with a finished run.
    """
    cached = view.__dict__.get(_PANELS)
    if cached is not None:
        return cached
    variants = view.gated + view.families
    if not variants:
        raise NothingToShow(view.none_finished("gated", "family"))
    x = x_grid()
    layers = shape_layers(view)
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


def x_grid() -> np.ndarray:
    """The pre-activation values every panel is evaluated at: 241 points over :data:`X_RANGE`. Shape ``(241,)``."""
    return np.linspace(*X_RANGE, 241)


def shape_layers(view: StudyView) -> list[int]:
    """The hidden layers (1-based) the figure has a column of panels for: every gated layer of a gated
    variant, every hidden layer of a learnable family."""
    return sorted({int(g["layer"]) for v in view.gated for g in view.gated_layers(v)}
                  | {i + 1 for v in view.families for i in range(len(view.config(v).backbone.hidden))})
