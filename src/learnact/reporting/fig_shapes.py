"""The learned activation shapes figure: the function each hidden layer applies, per variant and seed.

Drawing only: the curves are computed, with PyTorch, by :mod:`.shapes`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ._plot import draw_lines, label_bottom_panels, next_layer_panel, wrap_name
from .fig_gates import layer_panels
from .shapes import ShapePanel, shape_layers, shape_panels, x_grid
from .study_view import StudyView
from .style import candidate_color, new_figure, variant_colors

__all__ = ["activation_shapes_figure"]


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
    layers = shape_layers(view)
    x = x_grid()
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
    label_bottom_panels(fig.axes)  # every panel spans the same x grid: its ticks and label once per column
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
