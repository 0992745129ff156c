"""Sweep figures: a metric and the gate entropy against the temperature or the entropy weight."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from ..evaluation import METRICS
from .study_view import NothingToShow, StudyView
from .style import format_number, new_figure, variant_colors
from .sweeps import SWEEP_FIELDS, Sweep, find_sweeps

__all__ = ["SWEEP_METRICS", "sweep_figure", "temperature_sweep_figure", "entropy_weight_sweep_figure"]

SWEEP_METRICS = {"classification": ("roc_auc", "accuracy"), "regression": ("r2", "rmse")}
"""The metrics drawn against a swept field, by task (then the gate entropy)."""
"""Metrics drawn against the swept value."""

_MARKERS = ["o", "s", "^", "D"]
_LAYER_STYLES = ["-", "--", ":", "-."]


def _points(view: StudyView, sweep: Sweep, quantity: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% t interval over seeds at each value of the sweep (NaN where missing)."""
    rows = []
    for v in sweep.variants:
        agg = view.aggregate(v, quantity)
        rows.append((np.nan,) * 3 if agg is None else (agg["mean"], agg["ci_low"], agg["ci_high"]))
    mean, low, high = np.array(rows, dtype=np.float64).T
    return mean, low, high


def _draw(ax: Axes, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray, color: object,
          marker: str, ls: str, label: str | None) -> None:
    ok = np.isfinite(low)
    ax.errorbar(x, mean, yerr=[np.where(ok, mean - low, 0), np.where(ok, high - mean, 0)], color=color,
                marker=marker, ms=5, ls=ls, lw=1.4, capsize=3, mec="0.1", mew=0.6, label=label)


def _ordinal(values: list[float]) -> bool:
    """True when the values include zero or less: no log axis, so evenly spaced positions are used."""
    return any(v <= 0 for v in values)


def _x_axis(ax: Axes, field: str, values: list[float]) -> str:
    """Set up the x axis; returns its label (shown once under all panels)."""
    if _ordinal(values):
        ticks: list[float] = list(range(len(values)))
        ax.set_xlim(-0.4, len(values) - 0.6)
        suffix = " (swept values, evenly spaced)"
    else:
        ax.set_xscale("log")
        ticks = values
        suffix = " (log scale)"
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([format_number(v) for v in values])
    return SWEEP_FIELDS[field][0] + suffix


def _positions(sweeps: list[Sweep], j: int, values: tuple[float, ...], all_values: list[float]) -> np.ndarray:
    """x positions of a series; overlapping series are shifted a little so their intervals stay visible."""
    shift = (j - (len(sweeps) - 1) / 2) if len(sweeps) > 1 else 0.0
    if _ordinal(all_values):
        return np.array([all_values.index(v) for v in values], dtype=float) + 0.08 * shift
    return np.asarray(values, dtype=float) * (1 + 0.025 * shift)


def sweep_figure(view: StudyView, field: str) -> tuple[Figure, str]:
    """Metrics and gate entropy (means with 95% t intervals over seeds) against a swept field.

    Raises:
        NothingToShow: The study has no sweep over ``field``.
    """
    sweeps = find_sweeps(view, field)
    if not sweeps:
        raise NothingToShow(f"the study has no sweep over {field} (two or more gated variants that differ "
                            f"only in {field})")
    colors = variant_colors(view)
    metrics = SWEEP_METRICS[view.task]
    fig = new_figure(3.0 * (len(metrics) + 1) + 0.4, 3.4)
    axes = fig.subplots(1, len(metrics) + 1)
    all_values = sorted({x for s in sweeps for x in s.values})
    ref = view.baseline if view.baseline is not None and view.is_fixed(view.baseline) else None
    for j, sweep in enumerate(sweeps):
        x = _positions(sweeps, j, sweep.values, all_values)
        color = colors[sweep.variants[len(sweep.variants) // 2]]
        marker = _MARKERS[j % len(_MARKERS)]
        for ax, metric in zip(axes, metrics, strict=False):
            _draw(ax, x, *_points(view, sweep, metric), color, marker, "-", sweep.label)
        layers = sorted({int(g["layer"]) for v in sweep.variants for g in view.gated_layers(v)})
        for i, layer in enumerate(layers):
            _draw(axes[-1], x, *_points(view, sweep, f"gate{layer}_entropy_mean"), color, marker,
                  _LAYER_STYLES[i % len(_LAYER_STYLES)], None)
    for ax, metric in zip(axes, metrics, strict=False):
        if ref is not None:
            agg = view.aggregate(ref, metric)
            if agg is not None:
                ax.axhline(float(agg["mean"]), color="0.45", ls=":", lw=1.1, label=f"{ref} (reference)")
        ax.set_ylabel(f"{METRICS[metric].label} (test set)")
    axes[-1].set_ylabel("Gate entropy H(g) (nats)")
    n_cand = max(len(g["candidates"]) for s in sweeps for v in s.variants for g in view.gated_layers(v))
    axes[-1].axhline(np.log(n_cand), color="0.45", ls="--", lw=0.9)
    axes[-1].set_ylim(bottom=0, top=(np.log(n_cand) if n_cand > 1 else 1.0) * 1.08)  # one candidate: H = 0
    xlabels = [_x_axis(ax, field, all_values) for ax in axes]
    axes[len(axes) // 2].set_xlabel(xlabels[0])
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.45", ls="--", lw=0.9))
    labels.append(f"uniform mixture (ln {n_cand})")
    layers = sorted({int(g["layer"]) for s in sweeps for v in s.variants for g in view.gated_layers(v)})
    for i, layer in enumerate(layers):
        handles.append(Line2D([], [], color="0.3", ls=_LAYER_STYLES[i % len(_LAYER_STYLES)]))
        labels.append(f"entropy, layer {layer}")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 3))
    symbol = SWEEP_FIELDS[field][1]
    series = "; ".join(f"{s.label}: {', '.join(s.variants)}" for s in sweeps)
    return fig, f"Mean over seeds with 95% t interval at each {symbol}. Series: {series}."


def temperature_sweep_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 6a: metrics and gate entropy against the temperature T."""
    return sweep_figure(view, "temperature")


def entropy_weight_sweep_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 6b: metrics and gate entropy against the entropy weight lambda."""
    return sweep_figure(view, "entropy_weight")
