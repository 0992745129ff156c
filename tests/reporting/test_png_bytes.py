"""The figures' PNG files are written by saving.png_bytes: Pillow reads them back pixel for pixel, with their dpi,
and a saved figure's PNG is PDFium's rendering of its PDF."""

from __future__ import annotations

import io

import numpy as np
import pypdfium2 as pdfium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from learnact.reporting.saving import png_bytes, save_figure
from learnact.reporting.style import figure_style, new_figure


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))),
       st.sampled_from([72.0, 96.0, 150.0, 300.0]))
def test_pillow_reads_back_every_pixel_and_the_dpi(rgb, dpi):
    data = png_bytes(rgb, dpi)
    image = Image.open(io.BytesIO(data))
    image.load()  # checks every chunk's CRC and the zlib stream
    assert image.mode == "RGB" and image.size == (rgb.shape[1], rgb.shape[0])
    np.testing.assert_array_equal(np.asarray(image), rgb)
    theirs = io.BytesIO()
    Image.fromarray(rgb).save(theirs, format="png", dpi=(dpi, dpi))
    assert image.info["dpi"] == Image.open(theirs).info["dpi"]  # the same pHYs as Pillow writes


def test_other_arrays_are_refused_naming_the_shape():
    with pytest.raises(ValueError, match=r"shape \(4, 4\)"):
        png_bytes(np.zeros((4, 4), np.uint8), 150)
    with pytest.raises(ValueError, match="float64"):
        png_bytes(np.zeros((4, 4, 3)), 150)


def test_a_saved_figures_png_is_pdfiums_rendering_of_its_pdf(tmp_path):
    with figure_style():
        fig = new_figure(3, 2)
        ax = fig.subplots()
        ax.plot([0, 1, 2], [1, 0, 2], color="tab:red")
        ax.set_title("\u03bb = 0.3")
        png, pdf = save_figure(fig, tmp_path, "f")
    image = np.asarray(Image.open(png))
    doc = pdfium.PdfDocument(str(pdf))
    try:
        page = doc[0]
        dpi = Image.open(png).info["dpi"][0]
        rendered = np.asarray(page.render(scale=round(dpi) / 72.0).to_pil().convert("RGB"))
        page.close()
    finally:
        doc.close()
    assert image.shape[2] == 3 and image.shape[0] <= rendered.shape[0] and image.shape[1] <= rendered.shape[1]
    np.testing.assert_array_equal(image, rendered[:image.shape[0], :image.shape[1]])
    assert (image < 128).any() and (image == 255).all(axis=2).mean() > 0.5  # drawn on white
