"""Each font's PDF subset is made once per process (reporting._pdf_fonts): the same glyphs on the page and the
same text in the file as matplotlib's own per-figure subsets, one fontTools subset instead of one per figure."""

from __future__ import annotations

import numpy as np
import pypdfium2 as pdfium
import pytest
from fontTools import subset as ft_subset
from matplotlib.backends import _backend_pdf_ps
from PIL import Image

from learnact.reporting import _pdf_fonts
from learnact.reporting.saving import save_figure
from learnact.reporting.style import figure_style, new_figure

pytestmark = pytest.mark.skipif(not _pdf_fonts.supported(),
                                reason="this matplotlib subsets fonts through another interface; nothing is shared")


@pytest.fixture
def subsets(monkeypatch):
    """Counts fontTools subsets made (each costs 0.1-0.2 s)."""
    made = [0]
    original = ft_subset.Subsetter.subset

    def counting(self, font):
        made[0] += 1
        return original(self, font)

    monkeypatch.setattr(ft_subset.Subsetter, "subset", counting)
    monkeypatch.setattr(_pdf_fonts, "_SHARED", {})  # as in a fresh process
    return made


def _figure(title: str, label: str = "Pre-activation x"):
    fig = new_figure(3, 2)
    ax = fig.subplots()
    ax.plot([-3, 1], [-2, 2])
    ax.set_title(title, fontweight="bold")
    ax.set_xlabel(label)
    ax.set_ylabel("\u03c6(x)")
    return fig


def _save(tmp_path, name: str, title: str, label: str = "Pre-activation x") -> tuple[bytes, np.ndarray, str]:
    with figure_style():
        png, pdf = save_figure(_figure(title, label), tmp_path, name)
    doc = pdfium.PdfDocument(str(pdf))
    try:
        page = doc[0]
        text = page.get_textpage().get_text_range()
    finally:
        doc.close()
    return pdf.read_bytes(), np.asarray(Image.open(png).convert("RGB")), text


def test_later_figures_reuse_each_fonts_subset(tmp_path, subsets):
    _save(tmp_path, "first", "learned \u03c6, \u03bb = 0.3 \u00b1 0.1")
    first = subsets[0]
    assert first == 2  # regular and bold, each once
    _save(tmp_path, "second", "another title, \u22123 \u2264 x")
    _save(tmp_path, "third", "T = 0.7 \u2192 0.5")
    assert subsets[0] == first  # no new subset: every glyph is in the shared ones


def test_shared_subsets_draw_and_extract_as_matplotlibs_own(tmp_path, subsets, monkeypatch):
    title = "adaptive_entropy_T0.7 (\u03bb = 0.01): \u22123 \u00b1 0.2"
    shared_pdf, shared_png, shared_text = _save(tmp_path / "shared", "f", title)
    monkeypatch.setattr(_pdf_fonts, "supported", lambda: False)  # matplotlib's per-figure subsets
    own_pdf, own_png, own_text = _save(tmp_path / "own", "f", title)
    assert shared_pdf != own_pdf  # the shared subset carries more glyphs
    np.testing.assert_array_equal(shared_png, own_png)
    assert shared_text == own_text and "\u03bb = 0.01" in shared_text


def test_a_glyph_outside_the_shared_set_gets_the_figures_own_subset(tmp_path, subsets):
    _, _, text = _save(tmp_path, "greek", "\u03b2 and \u03a9", label="\u03b3 (outside the shared set)")
    assert "\u03b2 and \u03a9" in text and "\u03b3" in text
    before, _, _ = _save(tmp_path, "plain", "plain title")
    _save(tmp_path, "greek2", "\u03b2 again")
    after, _, _ = _save(tmp_path, "plain", "plain title")
    assert before == after  # what was drawn in between does not change a figure's file


def test_matplotlib_is_left_as_it_was_outside_the_block():
    with _pdf_fonts.shared_subsets():
        assert _backend_pdf_ps.get_glyphs_subset is not _pdf_fonts._ORIGINAL_SUBSET
    assert _backend_pdf_ps.get_glyphs_subset is _pdf_fonts._ORIGINAL_SUBSET
    assert _backend_pdf_ps.font_as_file is _pdf_fonts._ORIGINAL_AS_FILE
    with pytest.raises(RuntimeError), _pdf_fonts.shared_subsets():
        raise RuntimeError("a failed save")
    assert _backend_pdf_ps.get_glyphs_subset is _pdf_fonts._ORIGINAL_SUBSET
    assert _backend_pdf_ps.font_as_file is _pdf_fonts._ORIGINAL_AS_FILE
