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


@pytest.mark.parametrize("name", GRIDS)
def test_the_x_label_is_left_to_each_columns_lowest_panel(tiny_study, name):
    # the panels above a column's lowest drawn one drop the x label, and the x tick labels where their x range is
    # the lowest one's (the activation shapes: every panel spans the same x grid): nothing is lost
    spec = next(s for s in FIGURES if s.name == name)
    view = load_study_view(tiny_study)
    with figure_style():
        fig, _ = spec.build(view)
        fig.canvas.draw()
    columns: dict[int, list] = {}
    for ax in fig.axes:
        if ax.axison and ax.get_visible() and ax.xaxis.get_visible():
            spec_ = ax.get_subplotspec()
            columns.setdefault(spec_.colspan.start, []).append((spec_.rowspan.start, ax))
    assert any(len(panels) > 1 for panels in columns.values()), f"{name}: no column with two drawn panels"
    for panels in columns.values():
        panels.sort(key=lambda p: p[0])
        bottom = panels[-1][1]
        assert bottom.get_xlabel()
        assert any(t.get_visible() and t.get_text() for t in bottom.get_xticklabels())
        for _, ax in panels[:-1]:
            assert not ax.get_xlabel()
            shown = any(t.get_visible() and t.get_text() for t in ax.get_xticklabels())
            assert shown is (ax.get_xlim() != bottom.get_xlim())
            if name == "activation_shapes":
                assert not shown and ax.get_xlim() == bottom.get_xlim()


def test_label_bottom_panels_leaves_twins_and_switched_off_panels_alone():
    from matplotlib.figure import Figure

    from learnact.reporting._plot import label_bottom_panels

    with figure_style():
        fig = Figure()
        grid = fig.subplots(3, 1)
        for ax in grid:
            ax.plot([0, 1], [0, 1])
            ax.set_xlabel("x")
        grid[1].set_xlim(0, 2)
        grid[2].set_axis_off()  # no data there: the middle panel is the column's lowest drawn one
        twin = grid[1].twinx()  # its twin (after it in fig.axes): the panel, not the twin, keeps the label
        label_bottom_panels(fig.axes)
    assert not grid[0].get_xlabel() and grid[1].get_xlabel() == "x" and grid[2].get_xlabel() == "x"
    assert any(t.get_visible() for t in grid[0].get_xticklabels())  # another x range than the middle panel's
    assert twin.get_xlabel() == ""
