"""Plot helpers shared by the figure modules (private)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..evaluation import describe_quantity
from .study_view import StudyView
from .style import candidate_color, variant_family

if TYPE_CHECKING:  # the tables use the row order here in a process that draws nothing (no matplotlib)
    from matplotlib.axes import Axes

__all__ = ["Row", "grouped_rows", "apply_rows", "seed_offsets", "stacked_bar", "wrap_name", "grid_shape",
           "pick_showcase", "GROUP_HEADINGS", "next_layer_panel", "label_bottom_panels", "SeedDots"]

Row = tuple[str, str]
"""``("heading", text)`` or ``("variant", name)``, top to bottom."""

GROUP_HEADINGS = {"fixed": "Fixed baselines", "gated": "Gated mixtures", "family": "Learnable families"}
"""Heading of each kind of variant (:func:`~learnact.reporting.study_view.variant_kind`) in charts and tables."""


def grouped_rows(view: StudyView, variants: Sequence[str] | None = None,
                 sort_key: Callable[[str], float] | None = None) -> list[Row]:
    """Rows of a per-variant chart: fixed baselines, gated mixtures and learnable families apart.

    Args:
        view: The study.
        variants: Variants to show (default: all), kept in study order unless
            ``sort_key`` is given (ascending within each group).
        sort_key: Optional ordering within each group.

    Returns:
        Rows with a heading row before each group, when more than one group is present.
    """
    chosen = list(view.variants if variants is None else variants)
    groups = [(heading, [v for v in chosen if view.kind(v) == kind]) for kind, heading in GROUP_HEADINGS.items()]
    groups = [(h, sorted(vs, key=sort_key) if sort_key else vs) for h, vs in groups if vs]
    rows: list[Row] = []
    for heading, members in groups:
        if len(groups) > 1:
            rows.append(("heading", heading))
        rows.extend(("variant", v) for v in members)
    return rows


def apply_rows(ax: Axes, rows: Sequence[Row], *, labels: bool = True) -> dict[str, float]:
    """Put the rows on the y axis of ``ax`` (top to bottom); returns variant -> y.

    Heading rows get a bold label and a thin rule; variant rows their full name.
    With ``labels=False`` (a panel right of the labelled one, each with the
    same rows and so the same y limits) the panel has no y ticks, unless its
    y axis is shared with the labelled panel's (then only the labels go).
    """
    ys: dict[str, float] = {}
    ticks, texts = [], []
    for i, (kind, text) in enumerate(rows):
        ticks.append(i)
        texts.append(text)
        if kind == "variant":
            ys[text] = float(i)
        elif i > 0:
            ax.axhline(i - 0.5, color="0.55", lw=0.8, ls="-", zorder=0)
    if labels:
        ax.set_yticks(ticks)
        ax.set_yticklabels(texts)
        for tick, (kind, _) in zip(ax.get_yticklabels(), rows, strict=True):
            if kind == "heading":
                tick.set_fontweight("bold")
                tick.set_fontstyle("italic")
    elif len(ax.get_shared_y_axes().get_siblings(ax)) > 1:  # its y axis is another panel's: marks, no labels
        ax.set_yticks(ticks)
        ax.tick_params(axis="y", labelleft=False)
    else:  # a panel beside the labelled one, on the same rows: no y ticks at all (a tick per row, each made,
        # laid out and drawn, was a fifth of a row chart's CPU time)
        from matplotlib.ticker import NullLocator

        ax.yaxis.set_major_locator(NullLocator())
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    return ys


def next_layer_panel(ax: Axes, first: Axes | None, ylabel: str, *, ylabel_size: float, share_y: bool = False) -> Axes:
    """Label one of a variant's layer panels, drawn left to right in one row (:func:`.fig_gates.layer_panels`).

    The first drawn panel keeps its y tick labels and gets ``ylabel``; each
    later one has neither, as it sits right of the first on the
    same scale: ``share_y`` gives it the first panel's y axis (limits over
    both panels' data), else the caller has set the same limits on both. For
    the paper study's two panel grids, dropping them saves 5-10% of each
    figure's CPU time (laying out and drawing tick labels).

    Args:
        ax: The panel being drawn.
        first: The variant's first drawn panel, or ``None`` when ``ax`` is it.
        ylabel: The y label of the first panel.
        ylabel_size: Its font size (points).
        share_y: Share ``first``'s y axis.

    Returns:
        The variant's first drawn panel (``ax`` when ``first`` is ``None``).
    """
    if first is None:
        ax.set_ylabel(ylabel, fontsize=ylabel_size)
        return ax
    if share_y:
        ax.sharey(first)
    ax.tick_params(labelleft=False)
    return first


def label_bottom_panels(panels: Sequence[Axes]) -> None:
    """In a grid of ``panels``, leave the x label to the lowest drawn panel of each grid column.

    The panels above it drop their x label, and their x tick labels too where
    their x range is the lowest panel's (the same ticks: nothing is lost).
    Call it once the panels are drawn (their ranges set). Panels switched off
    (no data) or hidden, and twins (their x axis hidden), are left alone,
    and a column with one drawn panel keeps its labels. For the paper
    study's two panel grids (two dozen panels each), laying out and drawing
    the repeated labels took about 7% of those figures' CPU time.
    """
    columns: dict[int, list[tuple[int, Axes]]] = {}
    for ax in panels:
        spec = ax.get_subplotspec()
        if spec is not None and ax.axison and ax.get_visible() and ax.xaxis.get_visible():  # not a twin
            columns.setdefault(spec.colspan.start, []).append((spec.rowspan.stop, ax))
    for column in columns.values():
        column.sort(key=lambda entry: entry[0])
        bottom = column[-1][1]
        for _, ax in column[:-1]:
            ax.set_xlabel("")
            if ax.get_xlim() == bottom.get_xlim():
                ax.tick_params(labelbottom=False)


def seed_offsets(n: int, width: float = 0.25) -> np.ndarray:
    """Small, deterministic vertical offsets for ``n`` seed dots on one row."""
    if n <= 1:
        return np.zeros(max(n, 0))
    return np.linspace(-width / 2, width / 2, n)


class SeedDots:
    """A panel's seed dots and intervals, collected row by row and drawn as one scatter and one error bar.

    One artist per row (a scatter and an error bar each) drew about twice as slowly in the report's row charts;
    the pixels are the same. Add each row's dots and interval, then :meth:`draw` once.
    """

    def __init__(self) -> None:
        self.dots: list[tuple[float, float, object]] = []
        self.bars: list[tuple[float, float, float, float]] = []

    def add_dots(self, values: np.ndarray, heights: np.ndarray, color: object) -> None:
        """Seed ``values`` at ``heights`` (one each), in ``color``."""
        self.dots.extend(zip(values, heights, [color] * len(values), strict=True))

    def add_interval(self, centre: float, low: float, high: float, height: float) -> None:
        """An interval ``[low, high]`` around ``centre`` at ``height``."""
        self.bars.append((centre, height, centre - low, high - centre))

    def draw(self, ax: Axes, *, dots: dict, bars: dict) -> None:
        """Draw on ``ax``: ``ax.scatter(**dots)`` and ``ax.errorbar(fmt="none", **bars)`` (nothing for none)."""
        if self.dots:
            x, y, c = zip(*self.dots, strict=True)
            ax.scatter(x, y, c=list(c), **dots)
        if self.bars:
            centres, heights, below, above = (np.asarray(a) for a in zip(*self.bars, strict=True))
            ax.errorbar(centres, heights, xerr=[below, above], fmt="none", **bars)


def stacked_bar(ax: Axes, y: float, weights: np.ndarray, names: list[str], height: float) -> None:
    """One horizontal bar of mixture weights, a segment per candidate (labelled when wide enough)."""
    left = 0.0
    for w, name in zip(weights, names, strict=True):
        ax.barh(y, w, left=left, height=height, color=candidate_color(name), edgecolor="white", lw=0.5)
        if w >= 0.12:
            ax.text(left + w / 2, y, f"{w:.2f}", ha="center", va="center", fontsize=6.5, color="white")
        left += w


def wrap_name(name: str, width: int = 24) -> str:
    """Break a long variant name over lines at underscores (nothing is cut)."""
    if len(name) <= width:
        return name
    parts = name.split("_")
    lines, current = [], ""
    for part in parts:
        piece = part if not current else f"{current}_{part}"
        if current and len(piece) > width:
            lines.append(current + "_")
            current = part
        else:
            current = piece
    lines.append(current)
    return "\n".join(lines)


def grid_shape(n: int, max_cols: int) -> tuple[int, int]:
    """Rows and columns of a panel grid for ``n`` panels."""
    cols = max(1, min(n, max_cols))
    return (n + cols - 1) // cols, cols


def pick_showcase(view: StudyView, metric: str | None = None, limit: int = 5) -> list[str]:
    """A few variants that tell the story: the reference, then the best of each kind.

    The reference is :attr:`StudyView.baseline` (the study's reference, else the
    best fixed baseline by ROC-AUC); then the best variant of each gate kind
    (per layer, per neuron, input) and the best learnable family, by mean ``metric``.
    """
    metric = metric or view.headline[0]
    sign = 1.0 if describe_quantity(metric).higher_is_better is not False else -1.0

    def best(pool: list[str]) -> str | None:
        scored = [(sign * view.mean_metric(v, metric), v) for v in pool]
        scored = [s for s in scored if np.isfinite(s[0])]
        return max(scored)[1] if scored else (pool[0] if pool else None)

    chosen: list[str] = []
    ref = view.baseline if view.baseline is not None else best(view.fixed)
    if ref is not None:
        chosen.append(ref)
    pools = [[v for v in view.gated if variant_family(view.config(v)) == gate] for gate in ("layer", "neuron", "input")]
    for pool in [*pools, view.families]:
        pick = best(pool)
        if pick is not None and pick not in chosen:
            chosen.append(pick)
    if len(chosen) < 2:
        for v in sorted(view.variants, key=lambda v: -np.nan_to_num(view.mean_metric(v, metric), nan=-np.inf)):
            if v not in chosen:
                chosen.append(v)
            if len(chosen) >= 2:
                break
    return chosen[:limit]


def draw_lines(ax: Axes, curves: list[tuple[np.ndarray, Any]], x: np.ndarray | None = None, **style: Any) -> None:
    """Draw ``curves`` (each ``(y, color)``, against ``x`` or epochs ``1 .. len(y)``) as one line collection.

    One artist for a panel's lines: ``ax.plot`` per line made one Line2D
    each, and in the report's panel grids (hundreds of lines) creating and
    drawing those took 6-15% of the figure's time. ``style`` holds
    collection keywords (``lw``, ``alpha``, ``ls``). The axes' limits grow
    to the lines as ``ax.plot`` grows them.

    Shape:
        - each ``y``: ``(points,)``; ``x``: ``(points,)`` (the same for every curve) or ``None``
    """
    from matplotlib.collections import LineCollection

    if not curves:
        return
    segments = [np.column_stack((x if x is not None else np.arange(1, len(y) + 1), y)) for y, _ in curves]
    ax.add_collection(LineCollection(segments, colors=[c for _, c in curves], **style))
    ax.autoscale_view()
