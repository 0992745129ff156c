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
