"""Helper of test_parallel: run in a report worker, draws one figure and lists the heavy lazy imports it made."""

from __future__ import annotations

import sys
from pathlib import Path

WATCHED = ("scipy.special", "fontTools.subset")


def draw_and_list_imports(job: tuple[str, str, str]) -> list[str]:
    """Draw figure ``job[2]`` of study ``job[0]`` into ``job[1]``; which of :data:`WATCHED` drawing imported."""
    from learnact.reporting.figures import FIGURES, _render
    from learnact.reporting.study_view import load_study_view

    study, folder, name = job
    view = load_study_view(Path(study))  # reading the study is not drawing: its imports do not count
    before = set(sys.modules)
    _render(view, Path(folder), "", next(spec for spec in FIGURES if spec.name == name))
    return sorted(m for m in WATCHED if m in set(sys.modules) - before)


def draw_from_view(view, folder: str, name: str) -> list[str]:
    """Draw figure ``name`` from ``view`` (pickled here, as build_figures hands it out) into ``folder``; which of
    :data:`WATCHED` this worker has loaded by the end (preloaded or imported while drawing)."""
    from learnact.reporting.figures import FIGURES, _render

    _render(view, Path(folder), "", next(spec for spec in FIGURES if spec.name == name))
    return sorted(m for m in WATCHED if m in sys.modules)


def shapes_noting_torch(view):
    """The activation-shapes figure, its detail sentence saying whether the drawing process had torch loaded."""
    from learnact.reporting.fig_shapes import activation_shapes_figure

    fig, _ = activation_shapes_figure(view)
    return fig, f"torch loaded: {'torch' in sys.modules}"
