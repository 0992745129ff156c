"""Shared look of every figure: variant and candidate colours, labels, saving.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot
and no global backend switch), inside :data:`RC` via :func:`figure_style`,
and saved as PDF (vector, for LaTeX) and PNG (screens, the PDF rasterised)
by :func:`~learnact.reporting.saving.save_figure`. matplotlib is imported
where a figure is made, not with this module: the report's tables use the
colours' groups and labels in a process that draws nothing.

Colours are fixed per variant for the whole report. Variants fall in groups
(:func:`variant_family`): fixed baselines, gated mixtures by gate kind (per
layer, per neuron, input-dependent) and learnable families by name (``prelu``,
``spline``, ...). Each group has its own hue, the same in every study, and its
members get evenly spaced shades of it, in study order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import RunConfig
from .study_view import StudyView

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "RC",
    "figure_style",
    "new_figure",
    "variant_family",
    "FAMILY_LABELS",
    "group_label",
    "variant_colors",
    "candidate_color",
    "format_number",
]

RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "savefig.dpi": 150,
    "pdf.fonttype": 42,
    # matplotlib >= 3.11 sizes the PDF's font subsets by ps.fonttype: at its default (3) every character past code
    # 255 (the minus sign, λ, φ) goes into a second embedded copy of the font, one more fontTools subset per figure
    "ps.fonttype": 42,
    "figure.constrained_layout.use": True,
    # the layout measures text with Agg at 72 dpi; unhinted, as the PDF backend draws it, Agg's measures are the
    # PDF's to the last bit, and a text is laid out once for both (saving._measured_by). Agg draws no report
    # figure: the PNGs are the PDFs rasterised
    "text.hinting": "none",
}
"""Matplotlib settings of every report figure."""

FAMILY_LABELS = {
    "fixed": "Fixed baselines",
    "layer": "Static gate (per layer)",
    "neuron": "Static gate (per neuron)",
    "input": "Input-dependent gate",
}
"""Readable names of the fixed and gated variant groups (learnable families: :func:`group_label`)."""

_FAMILY_CMAPS = {"fixed": "Greys", "layer": "Blues", "neuron": "Greens", "input": "Oranges"}
# Learnable families: hues away from the gates' blues, greens and oranges and the baselines' greys.
_LEARNABLE_FAMILY_COLORS = {
    "spline": "#d62728",
    "prelu": "#9467bd",
    "swish": "#e377c2",
    "rational": "#8c564b",
    "pwl": "#17becf",
    "maxout": "#bcbd22",
    "kernel": "#7b4173",
    "neural": "#393b79",
}

_CANDIDATE_COLORS = {
    "relu": "#1b9e77",
    "tanh": "#d95f02",
    "sigmoid": "#7570b3",
    "gelu": "#e7298a",
    "silu": "#66a61e",
    "elu": "#e6ab02",
    "softplus": "#a6761d",
    "leaky_relu": "#1f78b4",
    "identity": "#666666",
    "sin": "#b15928",
}
_EXTRA = ["#8dd3c7", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#bc80bd", "#ccebc5"]


@contextmanager
def figure_style() -> Iterator[None]:
    """Apply :data:`RC` for the figures built inside the block."""
    import matplotlib

    with matplotlib.rc_context(RC):  # type: ignore[arg-type]  # RC's keys are rcParams names, checked at run time
        yield


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of ``width x height`` inches (no pyplot state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def variant_family(config: RunConfig) -> str:
    """The variant's colour group: ``"fixed"``, its gate kind (``"layer"``, ``"neuron"``,
    ``"input"``) or, for a learnable family, the family's name (``"prelu"``, ``"spline"``, ...)."""
    act = config.activation
    if act.kind == "fixed":
        return "fixed"
    return act.gate if act.kind == "gated" else act.kind


def group_label(group: str) -> str:
    """Readable name of a :func:`variant_family` group (``"Learnable family: spline"``)."""
    return FAMILY_LABELS.get(group, f"Learnable family: {group}")


def _shades(group: str, n: int) -> list[tuple[float, float, float, float]]:
    """``n`` evenly spaced shades of the group's hue, darkest first."""
    import matplotlib
    from matplotlib.colors import to_rgb

    if group in _FAMILY_CMAPS:
        cmap = matplotlib.colormaps[_FAMILY_CMAPS[group]]
        lo, hi = (0.45, 0.85) if group != "fixed" else (0.4, 0.8)
        return [cmap(hi - (hi - lo) * (i / (n - 1)) if n > 1 else 0.7) for i in range(n)]
    base = np.array(to_rgb(_LEARNABLE_FAMILY_COLORS.get(group) or candidate_color(group)))
    out = []
    for i in range(n):
        t = -0.3 + 0.75 * i / (n - 1) if n > 1 else 0.0  # < 0: toward black, > 0: toward white
        rgb = base * (1 + t) if t < 0 else base + (1 - base) * t
        r, g, b = (float(c) for c in np.clip(rgb, 0, 1))
        out.append((r, g, b, 1.0))
    return out


def variant_colors(view: StudyView) -> dict[str, tuple[float, float, float, float]]:
    """One RGBA colour per variant: its group's hue (:func:`variant_family`), shades in study order."""
    groups: dict[str, list[str]] = {}
    for v in view.variants:
        groups.setdefault(variant_family(view.config(v)), []).append(v)
    colors: dict[str, tuple[float, float, float, float]] = {}
    for group, members in groups.items():
        colors.update(zip(members, _shades(group, len(members)), strict=True))
    return colors


def candidate_color(name: str) -> str:
    """A fixed colour per candidate activation name (same in every figure)."""
    if name in _CANDIDATE_COLORS:
        return _CANDIDATE_COLORS[name]
    return _EXTRA[sum(map(ord, name)) % len(_EXTRA)]


def format_number(value: float) -> str:
    """Compact text of a setting (``0.7``, ``0.001``, ``2``)."""
    return f"{value:g}"
