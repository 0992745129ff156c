"""Every report figure's files hold all of its artists.

``save_figure`` saves the canvas as the constrained layout left it, and crops to the tight box (saving again)
only when something sticks out. These tests check, for every registered figure, that the PNG covers the tight
box of everything drawn, on a small suite table with a long variant name: the figures that fit take the fast
path (saved at their canvas size); the IQM figure's labels do not fit its canvas, and it must be cropped to
its content instead of cut. The same save serves every study figure.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from learnact.evaluation.suite import suite_analysis
from learnact.reporting.style import figure_style, save_figure
from learnact.reporting.suite_report import SUITE_FIGURES


def _saved_covers_everything(fig, tmp_path, name: str) -> tuple[bool, bool, str]:
    """Save with save_figure; (PNG covers the tight box, PNG is the canvas size, description)."""
    save_figure(fig, tmp_path, name)
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    dpi = float(matplotlib.rcParams["savefig.dpi"])
    with Image.open(tmp_path / f"{name}.png") as im:
        w, h = im.size
    covers = w >= box.width * dpi - 2 and h >= box.height * dpi - 2
    canvas = abs(w - fig.bbox_inches.width * dpi) <= 1 and abs(h - fig.bbox_inches.height * dpi) <= 1
    return covers, canvas, f"{name}: png {w}x{h}, content {box.width * dpi:.0f}x{box.height * dpi:.0f}"


def _suite_tidy() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    variants = ["baseline_relu", "adaptive_entropy_T0.7_lam0.01_with_a_long_name", "kernel", "spline_unit"]
    rows = []
    for d in ("breast_cancer", "wine", "digits", "formula_ripple"):
        for i, v in enumerate(variants):
            for s in range(3):
                rows.append({"run_id": f"{v}__{d}__s{s}", "variant": v, "seed": s, "status": "finished",
                             "dataset": d, "kind": "fixed", "metric": "accuracy", "group": "performance",
                             "value": 0.8 + 0.02 * i + 0.01 * rng.standard_normal()})
    tidy = pd.DataFrame(rows)
    tidy.attrs["reference"] = "baseline_relu"
    return tidy


@pytest.mark.parametrize("entry", SUITE_FIGURES, ids=lambda e: e[0])
def test_a_suite_figure_is_saved_whole(entry, tmp_path):
    name, _title, _caption, build = entry
    analysis = suite_analysis(_suite_tidy(), "accuracy", reps=50)
    with figure_style():
        fig, _ = build(analysis)
        covers, canvas, what = _saved_covers_everything(fig, tmp_path, name)
    assert covers, what
    assert (tmp_path / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    # the IQM figure's labels overflow its 5.5-inch canvas: cropped to the content, wider than the canvas
    assert canvas == (name != "iqm"), what
