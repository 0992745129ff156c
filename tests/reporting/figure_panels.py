"""Reading numbers back from the report's figures (shared by the report tests)."""

from __future__ import annotations

from matplotlib.figure import Figure


def panel_means(fig: Figure, xlabel: str) -> dict[str, float]:
    """The mean marker of each row in the cost figure's panel labelled ``xlabel``: variant -> x."""
    axes = fig.axes
    rows = {round(float(y), 6): t.get_text() for y, t in zip(axes[0].get_yticks(), axes[0].get_yticklabels(),
                                                              strict=True)}
    ax = next(a for a in axes if a.get_xlabel().startswith(xlabel))
    means = [line for line in ax.get_lines() if line.get_marker() == "o" and len(line.get_xdata()) == 1]
    return {rows[round(float(line.get_ydata()[0]), 6)]: float(line.get_xdata()[0]) for line in means}
