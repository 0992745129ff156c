"""Everything that draws the report's figures, in one import: each figure's builder and the figure saver.

:data:`~learnact.reporting.figures.FIGURES` names its builders here, and
they load (with matplotlib) where a figure is first drawn. The report
workers' fork server imports this module ahead of time
(:data:`~learnact.reporting.parallel.PRELOAD`), so every worker starts with
it loaded.
"""

from __future__ import annotations

from .fig_cases import case_studies_figure
from .fig_gates import gate_evolution_figure, gate_selectivity_figure, gate_weights_figure
from .fig_performance import confusion_figure, cost_figure, leaderboard_figure, regression_figure, roc_figure
from .fig_shapes import activation_shapes_figure
from .fig_sweeps import entropy_weight_sweep_figure, temperature_sweep_figure
from .fig_training import loss_curves_figure
from .saving import save_figure
from .style import figure_style

__all__ = ["activation_shapes_figure", "case_studies_figure", "confusion_figure", "cost_figure",
           "entropy_weight_sweep_figure", "figure_style", "gate_evolution_figure", "gate_selectivity_figure",
           "gate_weights_figure", "leaderboard_figure", "loss_curves_figure", "regression_figure", "roc_figure",
           "save_figure", "temperature_sweep_figure", "warm_up_drawing"]


def warm_up_drawing() -> None:
    """Draw and save one small figure into a temporary folder, and remove it: what a process does once, on its
    first figure, is then done (the PDF backend loaded, the fonts opened, the shared font subset made or read,
    the mathtext parser built, PDFium set up: about 0.1 s of a first figure's CPU time), and the processes it
    forks inherit it. A report helper started ahead does it while it waits for the study view
    (:func:`~learnact.reporting.parallel.warm_up`). Every figure's files are the same with or without it (a
    figure's font subset does not depend on what was drawn before it)."""
    import tempfile
    from pathlib import Path

    from .style import new_figure

    with tempfile.TemporaryDirectory(prefix="learnact-warm-") as folder, figure_style():
        fig = new_figure(3.0, 2.0)
        left, right = fig.subplots(1, 2)
        left.plot([0.0, 1.0, 2.0], [0.0, 1.0, 0.5], label="tanh")
        left.errorbar([0.0, 1.0], [1.0, 2.0], yerr=[0.1, 0.2], fmt="o")
        left.scatter([0.0, 1.0], [1.0, 0.0])
        left.set_title("$\\pm$ $\\lambda$ $\\varphi(x)$")
        left.set_xlabel("epoch \u2212 \u03bb")
        left.legend()
        right.imshow([[0.0, 1.0], [1.0, 0.0]])
        right.text(0.0, 0.0, "97.1 \u00b1 0.3", fontweight="bold")
        save_figure(fig, Path(folder), "warm-up")
