"""The report's panel grids (one panel per variant and layer): a variant's later layers drop the y labels that
repeat its first panel's, on the first panel's scale."""

from __future__ import annotations

import pytest

from learnact.reporting import FIGURES, load_study_view
from learnact.reporting.style import figure_style

GRIDS = ("activation_shapes", "gate_evolution")


def _panels(fig, title_start: str):
    """The drawn panels whose title starts with ``title_start`` (a variant's name), left to right."""
    found = [ax for ax in fig.axes if ax.axison and ax.get_visible() and ax.get_title().startswith(title_start)]
    return sorted(found, key=lambda ax: ax.get_position().x0)


@pytest.mark.parametrize("name", GRIDS)
def test_a_variants_later_layer_panels_drop_the_repeated_y_labels(tiny_study, name):
    spec = next(s for s in FIGURES if s.name == name)
    view = load_study_view(tiny_study)
    with figure_style():
        fig, _ = spec.build(view)
        fig.canvas.draw()
    variants = ["static_cold", "annealed"] + (["prelu_unit", "spline_fam"] if name == "activation_shapes" else [])
    for variant in variants:
        first, *later = _panels(fig, variant + "\n")
        assert later, f"{name}: {variant} has one drawn layer panel"
        assert first.yaxis.get_tick_params()["labelleft"] and first.get_ylabel()
        assert any(t.get_visible() and t.get_text() for t in first.get_yticklabels())
        for ax in later:
            assert not any(t.get_visible() and t.get_text() for t in ax.get_yticklabels()), (name, variant)
            assert not ax.get_ylabel()
            assert ax.get_ylim() == pytest.approx(first.get_ylim())  # the same scale, so nothing is lost


@pytest.mark.parametrize("dense", [False, True])
def test_a_panels_dense_lines_are_rasterised_in_the_pdf_and_sparse_ones_stay_vector(tmp_path, dense):
    # a 1,005-run study's gate evolution drew 201 thin lines a panel: 2.3 MB of PDF paths, a third of its save time
    import numpy as np
    from matplotlib.collections import LineCollection

    from learnact.reporting._plot import DENSE_POINTS, draw_lines
    from learnact.reporting.style import new_figure, save_figure

    n_lines = DENSE_POINTS // 100 + 1 if dense else 10
    curves = [(np.linspace(0, 1, 100) ** (1 + i / n_lines), "C0") for i in range(n_lines)]
    with figure_style():
        fig = new_figure(3, 2)
        ax = fig.subplots()
        draw_lines(ax, curves, lw=0.6, alpha=0.35)
        (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert lines.get_rasterized() == dense
        assert ax.get_ylim()[0] < 0 < 1 < ax.get_ylim()[1]  # the limits still grow to the lines
        save_figure(fig, tmp_path, "f")
    pdf = (tmp_path / "f.pdf").read_bytes()
    assert (b"/Subtype /Image" in pdf) == dense  # rasterised: one image of the lines; else vector paths only
