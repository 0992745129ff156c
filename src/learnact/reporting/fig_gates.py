"""What the gates learned: selectivity across seeds, weights per layer, evolution over epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ._plot import (
    SeedDots,
    apply_rows,
    draw_lines,
    grid_shape,
    grouped_rows,
    label_bottom_panels,
    next_layer_panel,
    seed_offsets,
    stacked_bar,
    wrap_name,
)
from .study_view import NothingToShow, StudyView
from .style import candidate_color, new_figure, variant_colors

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["gate_selectivity_figure", "gate_weights_figure", "gate_evolution_figure", "layer_panels",
           "temperature_curve"]

_MARKERS = ["o", "s", "^", "D", "v", "P"]
# Matplotlib 3.10 renamed boxplot's ``vert=False`` to ``orientation="horizontal"``.
_HORIZONTAL = ({"orientation": "horizontal"} if tuple(map(int, matplotlib.__version__.split(".")[:2])) >= (3, 10)
               else {"vert": False})


def _require_gated(view: StudyView) -> list[str]:
    if not view.gated:
        raise NothingToShow(view.none_finished("gated"))
    return view.gated


def _layers(view: StudyView, variants: list[str]) -> list[int]:
    return sorted({int(g["layer"]) for v in variants for g in view.gated_layers(v)})


def gate_selectivity_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 5: gate entropy and maximum gate weight per layer, one dot per seed.

    Both statistics are means over the test samples (input gates), over the
    units (per-neuron gates) or the layer's single weight vector; the large
    marker is the mean over seeds with its 95% t interval.
    """
    variants = _require_gated(view)
    layers = _layers(view, variants)
    rows = grouped_rows(view, variants)
    colors = variant_colors(view)
    fig = new_figure(7.6, 1.0 + 0.3 * len(rows) * max(1, len(layers)) ** 0.5)
    axes = fig.subplots(1, 2)
    n_cand = max(len(g["candidates"]) for v in variants for g in view.gated_layers(v))
    span = 0.5 / max(1, len(layers))
    for j, (ax, stat) in enumerate(zip(axes, ("entropy_mean", "max_weight_mean"), strict=True)):
        ys = apply_rows(ax, rows, labels=j == 0)
        seeds = SeedDots()
        means: list[tuple[float, float, str, tuple]] = []
        for v, y in ys.items():
            for i, layer in enumerate(layers):
                name = f"gate{layer}_{stat}"
                vals = view.run_quantity(v, name)
                if not np.isfinite(vals).any():
                    continue
                yy = y + (i - (len(layers) - 1) / 2) * span
                seeds.add_dots(vals, yy + seed_offsets(len(vals), 0.6 * span), colors[v])
                agg = view.aggregate(v, name)
                if agg is not None and np.isfinite(agg["ci_low"]):
                    seeds.add_interval(agg["mean"], agg["ci_low"], agg["ci_high"], yy)
                means.append((np.nanmean(vals), yy, _MARKERS[i % len(_MARKERS)], colors[v]))
        seeds.draw(ax, dots={"s": 8, "alpha": 0.5, "lw": 0}, bars={"ecolor": "0.2", "elinewidth": 1, "capsize": 2})
        for x_mean, y_mean, marker, color in means:  # over the intervals, as drawn row by row
            ax.plot(x_mean, y_mean, marker, ms=5.5, mfc=color, mec="0.1", mew=0.7)
        ax.grid(axis="x", visible=True)
    axes[0].axvline(np.log(n_cand), color="0.4", ls="--", lw=0.9)
    axes[0].set_xlabel("Gate entropy H(g) (nats)")
    top = np.log(n_cand) if n_cand > 1 else 1.0  # one candidate: H(g) = 0 always, and (0, 0) is no range
    axes[0].set_xlim(left=-0.03 * top, right=top * 1.04)
    axes[1].axvline(1 / n_cand, color="0.4", ls="--", lw=0.9)
    axes[1].set_xlabel("Maximum gate weight max_k g_k")
    axes[1].set_xlim(1 / n_cand - 0.03, 1.02)
    handles = [Line2D([], [], ls="none", marker=_MARKERS[i % len(_MARKERS)], mfc="0.6", mec="0.1",
                      label=f"layer {layer}") for i, layer in enumerate(layers)]
    handles.append(Line2D([], [], color="0.4", ls="--", lw=0.9, label=f"uniform mixture ({n_cand} candidates)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig, "Small dots: seeds; large markers: mean over seeds with 95% t interval."


def _static_panels(fig: Figure, view: StudyView, variants: list[str], layers: list[int]) -> set[str]:
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    rows = [("variant", v) for v in variants]
    seen: set[str] = set()
    for j, (ax, layer) in enumerate(zip(axes, layers, strict=True)):
        ys = apply_rows(ax, rows, labels=j == 0)
        for v, y in ys.items():
            per_seed, names = [], []
            for run in view.runs[v]:
                g = next((g for g in run.gates() if int(g["layer"]) == layer and g.get("weights") is not None), None)
                if g is not None:
                    w = np.asarray(g["weights"], dtype=float)
                    per_seed.append(w.reshape(-1, w.shape[-1]).mean(axis=0))
                    names = list(g["candidates"])
            if per_seed:
                stacked_bar(ax, y, np.mean(per_seed, axis=0), names, 0.65)
                seen.update(names)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"Layer {layer}: gate weight (mean over seeds)")
        ax.grid(axis="x", visible=True)
    fig.suptitle("Static gates: mean mixture weights", fontsize=9)
    return seen


def _input_panels(fig: Figure, view: StudyView, variants: list[str], layers: list[int]) -> set[str]:
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    rows = [("variant", v) for v in variants]
    seen: set[str] = set()
    for j, (ax, layer) in enumerate(zip(axes, layers, strict=True)):
        ys = apply_rows(ax, rows, labels=j == 0)
        for v, y in ys.items():
            info = next((g for g in view.gated_layers(v) if int(g["layer"]) == layer), None)
            if info is None:
                continue
            names = list(info["candidates"])
            pooled = [w for run in view.runs[v] if (w := run.sample_gates(layer, names)) is not None]
            if not pooled:
                continue
            data = np.concatenate(pooled)
            pos = y + seed_offsets(len(names), 0.6)
            box = ax.boxplot([data[:, k] for k in range(len(names))], positions=pos, widths=0.16, whis=(5, 95),
                             showfliers=False, patch_artist=True, manage_ticks=False, **_HORIZONTAL)
            for patch, name in zip(box["boxes"], names, strict=True):
                patch.set(facecolor=candidate_color(name), edgecolor="0.2", lw=0.6)
            for med in box["medians"]:
                med.set(color="0.1", lw=1)
            seen.update(names)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"Layer {layer}: per-sample gate weight")
        ax.grid(axis="x", visible=True)
    fig.suptitle("Input-dependent gates: distribution over test samples (all seeds)", fontsize=9)
    return seen


def gate_weights_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 8a: gate weights per layer (stacked bars for static gates, box plots for input gates)."""
    variants = _require_gated(view)
    layers = _layers(view, variants)
    static = [v for v in variants if view.config(v).activation.gate != "input"]
    inputs = [v for v in variants if view.config(v).activation.gate == "input"]
    parts = [p for p in ((static, _static_panels, 0.32), (inputs, _input_panels, 0.55)) if p[0]]
    heights = [1.0 + k * len(vs) for vs, _, k in parts]
    fig = new_figure(3.2 * len(layers) + 2.2, sum(heights) + 0.4)
    subs = fig.subfigures(len(parts), 1, height_ratios=heights, squeeze=False)[:, 0]
    seen: set[str] = set()
    for sub, (vs, draw, _) in zip(subs, parts, strict=True):
        seen |= draw(sub, view, vs, layers)
    order = [c for v in variants for g in view.gated_layers(v) for c in g["candidates"]]
    names = list(dict.fromkeys(c for c in order if c in seen))
    fig.legend(handles=[Patch(color=candidate_color(c), label=c) for c in names], loc="outside lower center",
               ncols=len(names), title="Candidate activation")
    detail = ("Stacked bars: mean over seeds (and over units for per-neuron gates). "
              "Boxes: quartiles; whiskers: 5th to 95th percentile over the test samples of all seeds.")
    return fig, detail


def layer_panels(fig: Figure, n_variants: int, n_layers: int) -> tuple[np.ndarray, int]:
    """A grid with one panel per (variant, layer), layers of a variant side by side.

    Each panel gets at most three intervals between tick labels on each axis:
    the panels are small, and in the report's largest figures (two dozen
    panels for the paper study) laying out and drawing tick labels took most
    of the time; with fewer, those figures take about 15% less CPU time.

    Returns:
        Axes of shape ``(n_variants, n_layers)`` and the number of grid columns.
    """
    per_row = max(1, 4 // n_layers) if n_layers <= 4 else 1
    n_rows, n_cols = grid_shape(n_variants, per_row)
    grid = np.atleast_2d(fig.subplots(n_rows, n_cols * n_layers, squeeze=False))
    out = np.empty((n_variants, n_layers), dtype=object)
    for i in range(n_rows * n_cols):
        r, c = divmod(i, n_cols)
        for layer in range(n_layers):
            ax = grid[r, c * n_layers + layer]
            if i < n_variants:
                ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
                ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
                out[i, layer] = ax
            else:
                ax.set_visible(False)
    return out, n_cols * n_layers


def temperature_curve(history: list[dict], layer: int) -> np.ndarray | None:
    """The gate temperature of hidden ``layer`` (1-based) after each epoch, from a run's history.

    Records carry ``temperature`` once the engine schedules it: one value per
    hidden layer (``None`` for a layer without a gate) or a single value for
    all. Returns ``None`` when the records do not carry it for that layer.

    Shape:
        - output: ``(epochs,)``
    """
    values = []
    for rec in history:
        t = rec.get("temperature")
        if isinstance(t, (list, tuple)):
            t = t[layer - 1] if len(t) >= layer else None
        if t is None:
            return None
        values.append(float(t))
    return np.array(values, dtype=float) if values else None


def _draw_temperature(ax: Axes, view: StudyView, variant: str, layer: int) -> bool:
    """Temperature over epochs on a right-hand axis, when the histories carry a changing one."""
    curves = [c for run in view.runs[variant] if (c := temperature_curve(run.history(), layer)) is not None]
    if not curves or all(np.allclose(c, c[0]) for c in curves):
        return False
    twin = ax.twinx()
    longest = max(curves, key=len)
    twin.plot(np.arange(1, len(longest) + 1), longest, color="0.1", lw=1.0, ls="--")
    twin.set_ylim(bottom=0, top=max(float(np.nanmax(c)) for c in curves) * 1.08)
    twin.tick_params(labelsize=6.5)
    twin.set_ylabel("T", fontsize=7.5)
    twin.grid(False)
    return True


def gate_evolution_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 8b: mean gate weight per candidate over epochs (validation set), per variant and layer.

    A gated variant whose temperature follows a schedule also gets its
    temperature over the epochs (dashed, right-hand axis), read from the
    histories when they carry it.
    """
    variants = _require_gated(view)
    layers = _layers(view, variants)
    if not any(rec.get("gate_weights") for v in variants for rec in view.runs[v][0].history()[:1]):
        raise NothingToShow("the runs' histories hold no gate weights")
    fig = new_figure(1, 1)
    axes, n_cols = layer_panels(fig, len(variants), len(layers))
    fig.set_size_inches(2.15 * n_cols + 0.3, 1.75 * ((len(variants) * len(layers) + n_cols - 1) // n_cols) + 0.6)
    names_seen: list[str] = []
    scheduled = False
    for i, v in enumerate(variants):
        first: Axes | None = None
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            info = next((g for g in view.gated_layers(v) if int(g["layer"]) == layer), None)
            ax.set_title(f"{wrap_name(v, 22)}\nlayer {layer}", fontsize=7.5)
            curves = [np.array([rec["gate_weights"][layer - 1] for rec in run.history()], dtype=float)
                      for run in view.runs[v] if run.history() and run.history()[0].get("gate_weights")]
            if info is None or not curves:
                ax.set_axis_off()
                continue
            names = list(info["candidates"])
            names_seen.extend(n for n in names if n not in names_seen)
            common = min(len(c) for c in curves)
            mean = np.mean([c[:common] for c in curves], axis=0)
            draw_lines(ax, [(c[:, k], candidate_color(name)) for k, name in enumerate(names) for c in curves],
                       lw=0.6, alpha=0.35)
            draw_lines(ax, [(mean[:, k], candidate_color(name)) for k, name in enumerate(names)], lw=1.6)
            ax.set_ylim(0, 1)
            ax.set_yticks([0, 0.5, 1])
            ax.tick_params(labelsize=7)
            ax.set_xlabel("Epoch", fontsize=7.5)
            first = next_layer_panel(ax, first, "Gate weight", ylabel_size=7.5)  # every panel on the same 0-1 scale
            scheduled |= _draw_temperature(ax, view, v, layer)
    label_bottom_panels(fig.axes)  # "Epoch" once per column; each panel keeps its own epoch ticks
    handles: list = [Patch(color=candidate_color(c), label=c) for c in names_seen]
    if scheduled:
        handles.append(Line2D([], [], color="0.1", lw=1.0, ls="--", label="temperature T (right axis)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), title="Candidate activation")
    detail = ("Gate weights averaged over the validation set after each epoch. Thin lines: single seeds "
              "(each stops at its own early-stopping epoch); bold lines: mean over seeds up to the epoch "
              "every seed reached.")
    if scheduled:
        detail += " Dashed: the scheduled gate temperature T of the longest-running seed (right-hand axis)."
    return fig, detail
