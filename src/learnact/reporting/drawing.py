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
           "save_figure", "temperature_sweep_figure"]
