"""The suite figures: critical-difference diagram, probability of improvement, IQM, performance profiles.

Each builder draws a :class:`~learnact.evaluation.suite.SuiteAnalysis`
(computed once per report) and returns ``(figure, detail sentence)``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..evaluation.suite import SuiteAnalysis
from .study_view import NothingToShow

__all__ = ["cd_diagram_figure", "iqm_figure", "poi_figure", "profiles_figure"]


def cd_diagram_figure(a: SuiteAnalysis) -> tuple[Figure, str]:
    """Demšar's critical-difference diagram: average ranks on an axis, bars join variants no test tells apart."""
    if a.nemenyi is None:
        raise NothingToShow("a critical-difference diagram needs at least 3 variants")
    ranks = a.nemenyi.ranks
    k = len(ranks)
    cd = a.nemenyi.critical_difference
    half = (k + 1) // 2
    fig = Figure(figsize=(7.0, 1.6 + 0.28 * half))
    ax = fig.add_subplot()
    ax.set_xlim(k + 0.3, 0.7)  # rank 1 on the right: better to the right, as Demšar draws it
    ax.set_ylim(-(half + 1.2), 1.6)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", lw=1)
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.12, color="black", lw=1)
        ax.text(r, 0.25, str(r), ha="center", va="bottom", fontsize=8)
    ax.hlines(1.2, 1, 1 + cd, color="black", lw=1.4)  # the critical difference, to scale
    ax.vlines([1, 1 + cd], 1.1, 1.3, color="black", lw=1.4)
    ax.text(1 + cd / 2, 1.35, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    order = list(ranks.index)  # best first
    for i, v in enumerate(order):
        rank = float(ranks[v])
        right = i < half
        depth = -(i + 1) if right else -(k - i)
        end = 0.8 if right else k + 0.2
        ax.plot([rank, rank, end], [0, depth * 0.8, depth * 0.8], color="0.3", lw=0.8)
        # beyond the end of its line, away from the axis (the x axis runs right to left: a label aligned towards
        # the axis had lain over its own line)
        ax.text(end - 0.05 if right else end + 0.05, depth * 0.8, f"{v} ({rank:.2f})", ha="left" if right else "right",
                va="center", fontsize=8)
    for j, clique in enumerate(a.cliques):
        lo, hi = float(ranks[clique].min()), float(ranks[clique].max())
        y = -0.25 - 0.18 * j
        ax.hlines(y, lo - 0.03, hi + 0.03, color="tab:red", lw=2.4)
    p = a.friedman.p_value if a.friedman is not None else float("nan")
    detail = (f"{len(a.means)} data sets; Friedman p = {p:.3g}; Nemenyi critical difference {cd:.2f} at "
              f"alpha = {a.nemenyi.alpha:g}.")
    return fig, detail


def poi_figure(a: SuiteAnalysis) -> tuple[Figure, str]:
    """Probability of improvement of the row variant over the column variant, on normalised scores."""
    variants = list(a.ranks.index)
    m = a.poi.reindex(index=variants, columns=variants).to_numpy(dtype=float)
    n = len(variants)
    fig = Figure(figsize=(1.2 + 0.7 * n, 0.9 + 0.6 * n))
    ax = fig.add_subplot()
    shown = np.where(np.isnan(m), 0.5, m)
    im = ax.imshow(shown, cmap="RdBu", vmin=0, vmax=1)
    ax.grid(False)
    for i in range(n):
        for j in range(n):
            if i != j:
                lo, hi = a.poi_ci[(variants[i], variants[j])]
                ax.text(j, i, f"{m[i, j]:.2f}\n[{lo:.2f}, {hi:.2f}]", ha="center", va="center", fontsize=6.5,
                        color="white" if abs(m[i, j] - 0.5) > 0.3 else "black")
    ax.set_xticks(range(n), variants, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(n), variants, fontsize=8)
    ax.set_xlabel("Y")
    ax.set_ylabel("X")
    fig.colorbar(im, ax=ax, label="P(X > Y)", fraction=0.046)
    return fig, (f"{len(a.means)} data sets; {int(a.confidence * 100)}% stratified bootstrap intervals in "
                 f"brackets.")


def iqm_figure(a: SuiteAnalysis) -> tuple[Figure, str]:
    """Interquartile mean of the normalised scores per variant, with its stratified bootstrap interval."""
    table = a.iqm.set_index("variant").reindex(list(a.ranks.index))
    n = len(table)
    fig = Figure(figsize=(5.5, 0.9 + 0.35 * n))
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    ax.errorbar(table["iqm"], y, xerr=[table["iqm"] - table["ci_low"], table["ci_high"] - table["iqm"]], fmt="o",
                color="tab:blue", ecolor="0.4", capsize=3)
    ax.set_yticks(y, list(table.index), fontsize=8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel(f"IQM of normalised {a.metric} (1 = best run on the data set)")
    ax.grid(axis="x", alpha=0.3)
    return fig, f"{len(a.means)} data sets; {int(a.confidence * 100)}% stratified bootstrap intervals."


def profiles_figure(a: SuiteAnalysis) -> tuple[Figure, str]:
    """Performance profiles: the fraction of runs whose normalised score exceeds each threshold."""
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    for v in a.ranks.index:
        ax.plot(a.taus, a.profiles[v], label=v, lw=1.4)
    ax.set_xlabel(f"normalised {a.metric} threshold $\\tau$")
    ax.set_ylabel("fraction of runs with score > $\\tau$")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return fig, f"{len(a.means)} data sets, every finished run."
