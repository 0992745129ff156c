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


def _drawn(study, name: str):
    """The registered figure ``name`` built on ``study`` and drawn (its layout done), with the study's view."""
    spec = next(s for s in FIGURES if s.name == name)
    view = load_study_view(study)
    with figure_style():
        built = spec.build(view)
        fig = built[0] if isinstance(built, tuple) else built
        fig.canvas.draw()
    return fig, view


@pytest.mark.parametrize("name", GRIDS)
def test_a_variants_later_layer_panels_drop_the_repeated_y_labels(tiny_study, name):
    fig, _ = _drawn(tiny_study, name)
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
    fig, _ = _drawn(tiny_study, name)
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


def test_row_panels_beside_the_labelled_one_make_no_y_ticks(tiny_study):
    # a row chart's panels right of the one naming the rows sit on the same rows (the same y limits) and make no
    # y ticks: a tick per row (made, laid out and drawn, label hidden) was a fifth of such a chart's CPU time
    from learnact.reporting.figures import NothingToShow

    checked = 0
    view = load_study_view(tiny_study)
    for spec in FIGURES:
        if spec.task == "regression":  # no row chart among the regression study's own figures
            continue
        with figure_style():
            try:
                built = spec.build(view)
            except NothingToShow:
                continue
            fig = built[0] if isinstance(built, tuple) else built
            fig.canvas.draw()
        names = set(view.variants)
        labelled = [ax for ax in fig.axes if names & {t.get_text() for t in ax.get_yticklabels() if t.get_visible()}]
        for first in labelled:
            beside = [ax for ax in fig.axes if ax is not first and ax.get_visible() and ax.axison
                      and ax.get_ylim() == first.get_ylim() and not ax.get_ylabel()
                      and ax.get_position().y0 == pytest.approx(first.get_position().y0)]
            for ax in beside:
                assert len(ax.yaxis.get_majorticklocs()) == 0, (spec.name, ax.get_xlabel())
                checked += 1
    assert checked >= 5  # leaderboard, cost, gate selectivity and weights, case studies


def test_apply_rows_keeps_the_row_ticks_of_a_shared_y_axis():
    # a panel sharing the labelled panel's y axis keeps the rows' ticks (the locator is theirs together) and hides
    # only its labels
    from matplotlib.figure import Figure

    from learnact.reporting._plot import apply_rows

    rows = [("heading", "Fixed baselines"), ("variant", "a"), ("variant", "b")]
    with figure_style():
        fig = Figure()
        left, right = fig.subplots(1, 2, sharey=True)
        apply_rows(left, rows)
        apply_rows(right, rows, labels=False)
        fig.canvas.draw()
    assert list(left.yaxis.get_majorticklocs()) == list(right.yaxis.get_majorticklocs()) == [0, 1, 2]
    assert [t.get_text() for t in left.get_yticklabels()] == ["Fixed baselines", "a", "b"]
    assert not any(t.get_visible() for t in right.get_yticklabels())


def test_the_loss_axis_has_minor_ticks_at_two_and_five_per_decade(tiny_study):
    # over several decades, minor ticks at 2 and 5 times each power of ten (matplotlib's locator switches to linear
    # minor ticks itself where the view spans less than a decade, as the tiny study's does)
    import numpy as np

    spec = next(s for s in FIGURES if s.name == "loss_curves")
    with figure_style():
        fig, _ = spec.build(load_study_view(tiny_study))
    logs = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    assert logs
    for ax in logs:
        minor = np.asarray(ax.yaxis.get_minor_locator().tick_values(2e-3, 0.7))
        mantissa = minor / 10.0 ** np.floor(np.log10(minor) + 1e-9)
        assert len(minor) >= 4 and set(np.round(mantissa, 6)) == {2.0, 5.0}


def test_confusion_panels_name_the_classes_along_the_grids_edges(tiny_study):
    # every panel has the classes in the same order: the predicted classes are named under each column's lowest
    # panel, the true classes left of each row's first; the panels inside the grid name none and make no ticks
    fig, view = _drawn(tiny_study, "confusion")
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_images()]
    assert len(panels) == len(view.variants) > 4
    n_cols = max(ax.get_subplotspec().colspan.start for ax in panels) + 1
    for i, ax in enumerate(panels):
        bottom, left = i + n_cols >= len(panels), i % n_cols == 0
        names_x = [t.get_text() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        names_y = [t.get_text() for t in ax.get_yticklabels() if t.get_visible() and t.get_text()]
        assert bool(names_x) is bottom and bool(ax.get_xlabel()) is bottom, i
        assert bool(names_y) is left and bool(ax.get_ylabel()) is left, i
        # a panel inside the grid makes no ticks at all on an axis it does not name
        assert (len(ax.xaxis.get_majorticklocs()) > 0) is bottom and (len(ax.yaxis.get_majorticklocs()) > 0) is left
