"""Performance figures: leaderboard, mean ROC, cost and mean confusion matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from ..evaluation import METRICS, confusion_matrix, describe_quantity, predicted_labels, roc_curve
from ..store import METRIC_RANGES
from ._plot import SeedDots, apply_rows, grid_shape, grouped_rows, pick_showcase, seed_offsets, wrap_name
from .study_view import MULTICLASS_METRICS, NothingToShow, RunView, StudyView
from .style import new_figure, variant_colors

__all__ = ["LEADERBOARD_METRICS", "COST_PANELS", "leaderboard_figure", "roc_figure", "cost_figure",
           "confusion_figure", "mean_roc", "regression_figure"]

LEADERBOARD_METRICS = {"classification": ("accuracy", "f1", "roc_auc"), "regression": ("rmse", "mae", "r2")}
"""The metrics of the leaderboard figure, by task."""
"""Metrics of the leaderboard figure (the paper's three)."""


def _interval(view: StudyView, variant: str, quantity: str, spread: str = "ci") -> tuple[float, float, float]:
    """Mean and the ends of its 95% t interval (``spread="ci"``) or of mean -/+ std (``"std"``)."""
    agg = view.aggregate(variant, quantity)
    if agg is None:
        return float("nan"), float("nan"), float("nan")
    mean = float(agg["mean"])
    if spread == "std":
        return mean, mean - float(agg["std"]), mean + float(agg["std"])
    return mean, float(agg["ci_low"]), float(agg["ci_high"])


def _row_chart(fig: Figure, view: StudyView, quantities: list[str | None], *, sort_by: str | None,
               xlabels: list[str], spread: str = "ci", clipped: set[str] | None = None) -> list:
    """One panel per quantity; a row per variant with seed dots, mean and its spread.

    A ``None`` quantity leaves its panel empty (rows only) for the caller to fill.
    With ``clipped`` (a set), intervals of a bounded metric (:data:`~learnact.store.METRIC_RANGES`) are cut
    at its range (a t interval over 2 seeds can reach accuracies of -1.5 and 3) and the metrics cut are added
    to the set.
    Returns the axes and the variant -> y mapping.
    """
    colors = variant_colors(view)
    key = None
    if sort_by is not None:
        sign = -1.0 if describe_quantity(sort_by).higher_is_better is not False else 1.0
        key = lambda v: sign * np.nan_to_num(view.mean_metric(v, sort_by), nan=-np.inf)  # noqa: E731
    rows = grouped_rows(view, sort_key=key)
    axes = fig.subplots(1, len(quantities), squeeze=False)[0]
    ref = view.baseline
    for j, (ax, q) in enumerate(zip(axes, quantities, strict=True)):
        ys = apply_rows(ax, rows, labels=j == 0)
        ax.set_xlabel(xlabels[j])
        ax.grid(axis="x", visible=True)
        if q is None:
            continue
        seeds = SeedDots()
        for v, y in ys.items():
            vals = view.run_quantity(v, q)
            mean, lo, hi = _interval(view, v, q, spread)
            if clipped is not None and q in METRIC_RANGES and (lo < METRIC_RANGES[q][0] or hi > METRIC_RANGES[q][1]):
                clipped.add(q)
                lo, hi = max(lo, METRIC_RANGES[q][0]), min(hi, METRIC_RANGES[q][1])
            if len(vals) > 1:
                seeds.add_dots(vals, y + seed_offsets(len(vals)), colors[v])
            if np.isfinite(lo):
                seeds.add_interval(mean, lo, hi, y)
            ax.plot(mean, y, "o", ms=6, mfc=colors[v], mec="0.1", mew=0.8, zorder=4)
        seeds.draw(ax, dots={"s": 9, "alpha": 0.45, "lw": 0, "zorder": 2},
                   bars={"ecolor": "0.15", "elinewidth": 1.2, "capsize": 3, "zorder": 3})
        if ref is not None and ref in ys:
            ax.axvline(_interval(view, ref, q)[0], color="0.3", ls=":", lw=1, zorder=1)
    return [axes, ys]


def _reference_note(view: StudyView) -> str:
    return f"Dotted line: the reference {view.baseline}." if view.baseline is not None else ""


def _range_text(low: float, high: float) -> str:
    """``[0, 1]``, ``at most 1`` (no lower bound) or ``at least 0`` (no upper bound)."""
    if np.isinf(low):
        return f"at most {high:g}"
    return f"at least {low:g}" if np.isinf(high) else f"[{low:g}, {high:g}]"


def leaderboard_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 1: accuracy, F1 and ROC-AUC per variant (seed dots, mean, 95% CI)."""
    n_rows = len(grouped_rows(view))
    fig = new_figure(8.0, 0.8 + 0.26 * n_rows)
    metrics = LEADERBOARD_METRICS[view.task]
    labels = [f"{METRICS[m].label} (test set)" for m in metrics]
    clipped: set[str] = set()
    _row_chart(fig, view, list(metrics), sort_by=view.headline[0], xlabels=labels, clipped=clipped)
    cut = [f"{METRICS[m].label} to {_range_text(*METRIC_RANGES[m])}" for m in metrics if m in clipped]
    note = f"Intervals clipped to each metric's range ({', '.join(cut)})." if cut else ""
    multi = MULTICLASS_METRICS if view.multiclass else ""
    return fig, " ".join(n for n in (multi, note, _reference_note(view)) if n)


COST_PANELS = ("flops_per_sample", "step_latency_ms", "activation_bytes_per_sample", "epochs_run")
"""Quantities of the cost figure after the parameter count (:mod:`learnact.training.cost`)."""


def cost_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 4: what each variant costs trained alone: parameters, FLOPs, step latency, memory, epochs.

    FLOPs (forward + backward), step latency (median over timed training steps
    on one thread) and activation memory are per variant, measured once after
    training at the study's batch size (:mod:`learnact.training.cost`); mean
    +- std over seeds. A study saved without them shows the training wall time
    instead of the latency.
    """
    n_rows = len(grouped_rows(view))
    quantities: list[str | None] = [None, *COST_PANELS]
    labels = ["Trainable parameters\n(count)", "FLOPs per sample\n(forward + backward)",
              "Training step latency\n(ms, alone, one thread)", "Activation memory\n(bytes per sample)",
              "Epochs until\nearly stop"]
    measured = any(np.isfinite(view.run_quantity(v, "step_latency_ms")).any() for v in view.variants)
    if not measured:
        quantities[2] = "train_time_s"
        labels[2] = "Training time\n(s, wall clock)"
    fig = new_figure(10.5, 0.8 + 0.26 * n_rows)
    axes, ys = _row_chart(fig, view, quantities, sort_by=None, xlabels=labels, spread="std")
    colors = variant_colors(view)
    top = 0.0
    for v, y in ys.items():
        n = float(np.nanmean(view.run_quantity(v, "n_params")))
        top = max(top, n)
        axes[0].barh(y, n, height=0.6, color=colors[v], edgecolor="0.2", lw=0.6)
        axes[0].text(n, y, f" {n:,.0f}", va="center", ha="left", fontsize=7.5)
    axes[0].set_xlim(0, top * 1.3)
    for ax in axes[1:]:  # from zero, with room for the largest marker (a margin of the data range cut it in half)
        high = float(ax.dataLim.x1)
        if np.isfinite(high) and high > 0:
            ax.set_xlim(0, high * 1.08)
        else:
            ax.set_xlim(left=0)
    note = _reference_note(view)
    if not measured:
        note = (note + " This study was saved without per-variant cost measurements: the time panel shows the "
                "training wall time (a stacked run's share of its stack).").strip()
    return fig, note


def mean_roc(runs: list[RunView], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std over runs of the ROC curve interpolated on ``grid`` (FPR).

    Multi-class runs use the macro average of one-vs-rest curves.

    Shape:
        - grid: ``(g,)``
        - output: two arrays ``(g,)``
    """
    curves = []
    for run in runs:
        y = run.predictions()["y_true"].to_numpy()
        prob = run.probabilities()
        scores = [prob] if prob.ndim == 1 else [prob[:, k] for k in range(prob.shape[1])]
        positives = [1] if prob.ndim == 1 else list(range(prob.shape[1]))
        per_class = []
        for s, pos in zip(scores, positives, strict=True):
            if len(np.unique(y == pos)) < 2:
                continue
            fpr, tpr, _ = roc_curve(y == pos, s)
            per_class.append(np.interp(grid, fpr, tpr))
        if per_class:
            curve = np.mean(per_class, axis=0)
            curve[0] = 0.0
            curves.append(curve)
    arr = np.array(curves)
    std = arr.std(axis=0, ddof=1) if len(arr) > 1 else np.zeros_like(grid)
    return arr.mean(axis=0), std


def roc_figure(view: StudyView) -> Figure:
    """Figure 2: mean ROC over seeds with a +-1 std band, full range and zoomed corner."""
    view.require_classification("ROC curves")
    colors = variant_colors(view)
    chosen = pick_showcase(view)
    grid = np.linspace(0.0, 1.0, 401)
    fig = new_figure(8.6, 3.5)
    full, zoom = fig.subplots(1, 2)
    styles = ["-", "--", "-.", ":"]
    floor = 1.0
    for i, v in enumerate(chosen):
        mean, std = mean_roc(view.runs[v], grid)
        floor = min(floor, float(np.interp(0.02, grid, mean)))
        agg = view.aggregate(v, "roc_auc")
        auc = f"AUC {float(agg['mean']):.4f} \u00b1 {float(agg['std']):.4f}" if agg is not None else "AUC n/a"
        for ax in (full, zoom):
            ax.fill_between(grid, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=colors[v],
                            alpha=0.15, lw=0)
            ax.plot(grid, mean, color=colors[v], lw=1.7, ls=styles[i % len(styles)],
                    label=f"{v}\n{auc}" if ax is full else None)
    lo = max(0.0, np.floor((floor - 0.05) * 20) / 20)
    full.plot([0, 1], [0, 1], color="0.6", ls="--", lw=0.8, label="chance")
    multiclass = view.runs[chosen[0]][0].probabilities().ndim == 2
    full.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate", ylabel="True positive rate",
             title="Full range" + (" (macro average, one-vs-rest)" if multiclass else ""))
    zoom.set(xlim=(0, 0.2), ylim=(lo, 1.005), xlabel="False positive rate", ylabel="True positive rate",
             title="Top-left corner (zoomed)")
    zoom.xaxis.set_major_locator(MaxNLocator(5))
    full.indicate_inset((0, lo, 0.2, 1.005 - lo), inset_ax=None, edgecolor="0.4", alpha=0.8)
    fig.legend(*full.get_legend_handles_labels(), loc="outside right center", labelspacing=1.0,
               title="Mean \u00b1 1 std over seeds")
    return fig


def confusion_figure(view: StudyView) -> Figure:
    """Figure 9: mean confusion matrix per variant, rows normalised (percent of true class) +- std."""
    view.require_classification("confusion matrices")
    variants = view.variants
    n_rows, n_cols = grid_shape(len(variants), 4)
    fig = new_figure(1.95 * n_cols + 0.4, 1.95 * n_rows + 0.5)
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    last = None
    for idx, (ax, v) in enumerate(zip(axes, variants, strict=False)):
        mats = []
        for run in view.runs[v]:
            y = run.predictions()["y_true"].to_numpy().astype(int)
            prob = run.probabilities()
            k = 2 if prob.ndim == 1 else prob.shape[1]
            cm = confusion_matrix(y, predicted_labels(prob), k).astype(float)
            mats.append(100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1))
        arr = np.array(mats)
        mean, std = arr.mean(axis=0), arr.std(axis=0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1:])
        last = ax.imshow(mean, cmap="Blues", vmin=0, vmax=100)
        k = mean.shape[0]
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{mean[i, j]:.1f}%\n\u00b1{std[i, j]:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if mean[i, j] > 60 else "0.1")
        # every panel has the classes in the same order: they are named (and ticked) along the grid's bottom and
        # left edges only; a panel inside the grid makes no ticks at all
        bottom, left = idx + n_cols >= len(variants), idx % n_cols == 0
        for axis, named in ((ax.xaxis, bottom), (ax.yaxis, left)):
            if named:
                axis.set_ticks(range(k), [str(c) for c in range(k)])
            else:
                axis.set_major_locator(NullLocator())
        if bottom:
            ax.set_xlabel("Predicted class")
        if left:
            ax.set_ylabel("True class")
        ax.set_title(wrap_name(v, 26), fontsize=8)
        ax.grid(False)
    for ax in axes[len(variants):]:
        ax.set_visible(False)
    if last is not None:
        fig.colorbar(last, ax=list(axes[:len(variants)]), shrink=0.6, label="Share of true class (%), mean over seeds")
    return fig


def regression_figure(view: StudyView) -> tuple[Figure, str]:
    """Predicted against true test targets, and the residuals, for the showcase variants (all seeds pooled)."""
    if view.task != "regression":
        raise NothingToShow("a classification study: see the ROC curves and confusion matrices")
    colors = variant_colors(view)
    chosen = pick_showcase(view, limit=4)
    fig = new_figure(8.6, 3.6)
    fit, resid = fig.subplots(1, 2)
    lo, hi = np.inf, -np.inf
    for v in chosen:
        pred = pd.concat([run.predictions() for run in view.runs[v]], ignore_index=True)
        y, p = pred["y_true"].to_numpy(np.float64), pred["y_pred"].to_numpy(np.float64)
        lo, hi = min(lo, y.min(), p.min()), max(hi, y.max(), p.max())
        agg = view.aggregate(v, "r2")
        label = f"{v} (R\u00b2 {float(agg['mean']):.3f})" if agg is not None else v
        fit.scatter(y, p, s=6, alpha=0.45, color=colors[v], label=label, lw=0)
        resid.hist(p - y, bins=30, histtype="step", color=colors[v], lw=1.3, density=True)
    fit.plot([lo, hi], [lo, hi], color="0.4", ls="--", lw=0.9)
    fit.set(xlabel="True target (test set)", ylabel="Predicted", title="Predicted against true")
    resid.axvline(0, color="0.4", ls="--", lw=0.9)
    resid.set(xlabel="Residual (predicted - true)", ylabel="Density", title="Residuals")
    fig.legend(*fit.get_legend_handles_labels(), loc="outside right center", markerscale=2.5)
    return fig, (f"Every seed's test predictions pooled; {len(chosen)} variants shown (the reference and the best "
                 f"of each kind).")
