"""Each font's PDF subset is made once per process (reporting._pdf_fonts): the same glyphs on the page and the
same text in the file as matplotlib's own per-figure subsets, one fontTools subset instead of one per figure."""

from __future__ import annotations

import json

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
def subsets(monkeypatch, tmp_path_factory):
    """Counts fontTools subsets made (each costs 0.1-0.2 s), from an empty subset cache."""
    monkeypatch.setenv(_pdf_fonts.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
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


def test_a_later_process_reads_the_shared_subsets_from_the_cache(tmp_path, subsets, monkeypatch):
    title = "learned \u03c6, \u03bb = 0.3 \u00b1 0.1"
    made_pdf, made_png, made_text = _save(tmp_path / "made", "f", title)
    assert subsets[0] == 2 and len(list(_pdf_fonts.cache_folder().glob("*.subset"))) == 2
    monkeypatch.setattr(_pdf_fonts, "_SHARED", {})  # another process
    read_pdf, read_png, read_text = _save(tmp_path / "read", "f", title)
    assert subsets[0] == 2  # no subset made: both came from the cache
    assert read_pdf == made_pdf and read_text == made_text  # byte for byte the file the subsets made
    np.testing.assert_array_equal(read_png, made_png)


@pytest.mark.parametrize("damage", ["edited", "truncated", "other glyphs", "not json"])
def test_a_damaged_cache_file_is_not_trusted_but_made_again(tmp_path, subsets, monkeypatch, damage):
    made_pdf, _, _ = _save(tmp_path / "made", "f", "plain title")
    files = sorted(_pdf_fonts.cache_folder().glob("*.subset"))
    for file in files:
        header, data = file.read_bytes().split(b"\n", 1)
        if damage == "edited":  # a byte of the font changed: its hash no longer matches
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        elif damage == "truncated":
            data = data[: len(data) // 2]
        elif damage == "other glyphs":  # a consistent file for another set of characters
            meta = json.loads(header)
            meta["glyphs"] = meta["glyphs"][:-1]
            header = json.dumps(meta).encode()
        else:
            header = b"{not json"
        file.write_bytes(header + b"\n" + data)
    monkeypatch.setattr(_pdf_fonts, "_SHARED", {})
    again_pdf, _, _ = _save(tmp_path / "again", "f", "plain title")
    assert subsets[0] == 4  # made again, regular and bold
    assert again_pdf == made_pdf
    monkeypatch.setattr(_pdf_fonts, "_SHARED", {})
    _save(tmp_path / "third", "f", "plain title")
    assert subsets[0] == 4  # the rewritten files are whole again


def test_a_cache_folder_that_cannot_be_written_changes_nothing(tmp_path, subsets, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(_pdf_fonts.CACHE_ENV, str(blocker))
    pdf, _, text = _save(tmp_path / "out", "f", "plain title")
    assert subsets[0] == 2 and "plain title" in text and pdf.startswith(b"%PDF")
    assert blocker.read_text() == "not a folder"


def test_no_home_folder_means_no_cache_and_no_error(tmp_path, subsets, monkeypatch):
    from pathlib import Path

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv(_pdf_fonts.CACHE_ENV, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    _, _, text = _save(tmp_path, "f", "plain title")
    assert subsets[0] == 2 and "plain title" in text
