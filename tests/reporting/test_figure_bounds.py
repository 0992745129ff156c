"""Every report figure's files hold all of its artists, drawn once for both files.

``save_figure`` lays the figure out once and draws it once, as its PDF, and renders that PDF as the PNG; it saves
the canvas as the constrained layout left it, and crops to the tight box (drawing again) only when a text sticks
out of the page. These
tests check, for every registered figure, that the PNG covers the tight box of everything drawn, on a small
suite table with a long variant name: the figures that fit take the fast path (one draw, saved at their canvas
size); the IQM figure's labels do not fit its canvas, and it must be cropped to its content instead of cut.
For every study figure, the PNG is what matplotlib's own raster backend draws of the same figure.
"""

from __future__ import annotations

import contextlib
import io

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from learnact.evaluation.suite import suite_analysis
from learnact.reporting import FIGURES, load_study_view
from learnact.reporting.figures import NothingToShow
from learnact.reporting.saving import save_figure
from learnact.reporting.style import figure_style
from learnact.reporting.suite_report import SUITE_FIGURES


def _save_counting_saves(fig, folder, name: str, monkeypatch) -> int:
    """save_figure, and how many times matplotlib saved (laid out and drew) the figure, in any format; PDFium must
    have read each of those PDFs once."""
    saves = []
    original = Figure.savefig

    def counted(self, fname, **kwargs):
        saves.append(kwargs.get("format"))
        return original(self, fname, **kwargs)

    from learnact.reporting import saving

    opened = []
    original_document = saving.pdfium.PdfDocument

    def opening(*args, **kwargs):
        opened.append(1)
        return original_document(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Figure, "savefig", counted)
        patch.setattr(saving.pdfium, "PdfDocument", opening)
        save_figure(fig, folder, name)
    # PDFium reads each PDF drawn once: the page it checks for texts off the page is the one it renders as the PNG
    assert len(opened) == len(saves), (name, len(opened), saves)
    return len(saves)


def _saved_covers_everything(fig, tmp_path, name: str, monkeypatch) -> tuple[bool, bool, int, str]:
    """Save with save_figure; (PNG covers the tight box, PNG is the canvas size, matplotlib saves, description)."""
    saves = _save_counting_saves(fig, tmp_path, name, monkeypatch)
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    dpi = float(matplotlib.rcParams["savefig.dpi"])
    with Image.open(tmp_path / f"{name}.png") as im:
        w, h = im.size
    covers = w >= box.width * dpi - 2 and h >= box.height * dpi - 2
    canvas = abs(w - fig.bbox_inches.width * dpi) <= 1 and abs(h - fig.bbox_inches.height * dpi) <= 1
    return covers, canvas, saves, f"{name}: png {w}x{h}, content {box.width * dpi:.0f}x{box.height * dpi:.0f}"


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
def test_a_suite_figure_is_saved_whole(entry, tmp_path, monkeypatch):
    name, _title, _caption, build = entry
    analysis = suite_analysis(_suite_tidy(), "accuracy", reps=50)
    with figure_style():
        fig, _ = build(analysis)
        covers, canvas, saves, what = _saved_covers_everything(fig, tmp_path, name, monkeypatch)
    assert covers, what
    assert (tmp_path / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    # the IQM figure's labels overflow its 5.5-inch canvas at matplotlib 3.11 (cropped to the content, wider than
    # the canvas; at 3.7 the layout fits them); every other figure fits (the crop itself: the test above)
    assert canvas or name == "iqm", what
    assert saves == (1 if canvas else 2), what  # a second draw only to crop; the PNG costs no save of its own


def _blocks(image: np.ndarray, side: int = 8) -> np.ndarray:
    """Mean colour of each ``side x side`` block: what the eye compares, not the anti-aliasing of edges."""
    h, w = (image.shape[0] // side) * side, (image.shape[1] // side) * side
    return image[:h, :w].reshape(h // side, side, w // side, side, -1).mean(axis=(1, 3))


@pytest.mark.parametrize("overflow", [False, True], ids=["fits", "cropped"])
def test_save_figure_lays_out_once_and_draws_once(overflow, tmp_path, monkeypatch):
    # matplotlib's savefig of a figure with a layout engine draws it twice (a dry run, then the file) and runs the
    # constrained layout in each; save_figure runs the layout once itself and saves with the positions fixed. A
    # figure whose text sticks out of the page (found in the PDF) is drawn a second time, cropped, never laid out
    # again
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from learnact.reporting.style import new_figure

    calls = {"layout": 0, "draw": 0}
    execute, draw = ConstrainedLayoutEngine.execute, Figure.draw

    def counted_execute(self, fig):
        calls["layout"] += 1
        return execute(self, fig)

    def counted_draw(self, renderer):
        calls["draw"] += 1
        return draw(self, renderer)

    with figure_style():
        fig = new_figure(3, 2)
        axes = fig.subplots(1, 2)
        for ax in axes:
            ax.plot([0, 1], [0, 1])
        if overflow:  # a title far wider than its panel: the layout cannot fit it, so the files are cropped
            axes[1].set_title("a title much wider than the panel it belongs to, sticking out right")
        monkeypatch.setattr(ConstrainedLayoutEngine, "execute", counted_execute)
        monkeypatch.setattr(Figure, "draw", counted_draw)
        save_figure(fig, tmp_path, "f")
        monkeypatch.undo()
    assert calls == {"layout": 1, "draw": 2 if overflow else 1}  # the second draw only to crop
    with Image.open(tmp_path / "f.png") as im:
        width = im.size[0]
    assert (width > 3 * 150 + 2) == overflow  # cropped to the content, wider than the canvas


def _block_difference(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Per 8 x 8 block, the smallest colour difference of :func:`_blocks` with ``theirs`` moved by at most one pixel.

    Agg snaps lines and glyphs to whole pixels and PDFium does not, so where a figure's lines fall half a pixel
    apart the two rasterisers draw them a pixel apart; a shifted layout or another picture moves more than that.
    """
    best = None
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            diff = np.abs(_blocks(ours) - _blocks(np.roll(theirs, (dy, dx), axis=(0, 1))))
            best = diff if best is None else np.minimum(best, diff)
    assert best is not None
    return best


@pytest.fixture(scope="module")
def tiny_regression_study(tmp_path_factory):
    """A finished regression study (diabetes, a fixed and a gated variant, 2 seeds, 3 epochs): its folder."""
    from learnact.experiment import run_study, study_from_dict

    folder = tmp_path_factory.mktemp("regression") / "study"
    run_study(study_from_dict({
        "name": "tiny_regression", "seeds": [1, 2], "data": {"dataset": "diabetes"}, "backbone": {"hidden": [8]},
        "train": {"max_epochs": 3}, "variants": [
            {"name": "fixed_tanh", "kind": "fixed", "activation": "tanh"},
            {"name": "gated", "kind": "gated", "gate": "layer"}]}), folder)
    return folder


@pytest.mark.parametrize("spec", FIGURES, ids=lambda s: s.name)
def test_a_report_figures_png_is_what_matplotlib_draws(spec, request, tmp_path, monkeypatch):
    # The PNG is the figure's PDF rendered by PDFium, not a second matplotlib draw. Compared here with
    # matplotlib's own raster backend (Agg) drawing the same figure at the same size and layout (frozen by
    # save_figure): the same picture up to how the two rasterisers anti-alias edges and text. Each figure is drawn
    # from the report's tiny classification study, a regression figure from a tiny regression study.
    view = load_study_view(request.getfixturevalue("tiny_regression_study" if spec.task == "regression"
                                                   else "tiny_study"))
    assert spec.task in (None, view.task)
    with figure_style():
        try:
            built = spec.build(view)
        except NothingToShow as why:
            pytest.fail(f"the tiny study should have something for every figure of its task: {why}")
        fig = built[0] if isinstance(built, tuple) else built
        saves = _save_counting_saves(fig, tmp_path, spec.name, monkeypatch)
        agg = io.BytesIO()
        fig.savefig(agg, format="png")
    assert saves == 1
    with Image.open(tmp_path / f"{spec.name}.png") as im, Image.open(agg) as ref:
        ours, theirs = (np.asarray(i.convert("RGB"), dtype=float) for i in (im, ref))
        assert im.info["dpi"] == pytest.approx((150, 150), abs=0.1)
    # matplotlib < 3.8 cuts a canvas of 1394.99... pixels to 1394, the PNG (as matplotlib now) rounds it to 1395
    assert all(abs(a - b) <= 1 for a, b in zip(ours.shape, theirs.shape, strict=True)), (ours.shape, theirs.shape)
    h, w = min(ours.shape[0], theirs.shape[0]), min(ours.shape[1], theirs.shape[1])
    ours, theirs = ours[:h, :w], theirs[:h, :w]
    assert ours.std() > 20  # not blank
    diff = _block_difference(ours, theirs)
    assert diff.mean() < 4 and (diff > 32).mean() < 0.02, (diff.mean(), (diff > 32).mean())


def test_a_figure_with_characters_past_latin_1_embeds_its_font_once(tmp_path):
    # matplotlib >= 3.11 starts a second embedded copy of a font for characters past code 255 (the minus sign of
    # every negative tick, λ, φ) unless ps.fonttype is 42 too: the figure style sets both, and each copy is one
    # more fontTools subset of DejaVu Sans (0.1-0.3 s of the figure's time). (Ligatures, such as "fi", take a
    # second copy all the same; none here.)
    import re

    from learnact.reporting.style import new_figure

    with figure_style():
        fig = new_figure(3, 2)
        ax = fig.subplots()
        ax.plot([-3, 1], [-2, 2])
        ax.set_title("learned φ, λ = 0.3")
        save_figure(fig, tmp_path, "glyphs")
    names = re.findall(rb"/FontName /[A-Z]{6}\+([A-Za-z-]+)", (tmp_path / "glyphs.pdf").read_bytes())
    assert names == [b"DejaVuSans"], names


@pytest.mark.parametrize("spec", FIGURES, ids=lambda s: s.name)
def test_a_report_figure_makes_only_the_ticks_it_draws(spec, request, tmp_path):
    # matplotlib makes a tick object (tick lines, grid line, labels) for every location the axis' locator returns
    # and draws those within the view; its automatic locator returns a step past each end. save_figure keeps
    # only the ticks within the view: the same ones drawn, fewer made and laid out.
    view = load_study_view(request.getfixturevalue("tiny_regression_study" if spec.task == "regression"
                                                   else "tiny_study"))
    with figure_style():
        built = spec.build(view)
        fig = built[0] if isinstance(built, tuple) else built
        save_figure(fig, tmp_path, spec.name)
    checked = 0
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            locator = axis.get_major_locator()
            base = getattr(locator, "base", None)
            if axis.get_scale() != "linear" or base is None:
                continue
            lo, hi = sorted(axis.get_view_interval())
            slack = (hi - lo) * 1e-9
            inside = [t for t in base() if lo - slack <= t <= hi + slack]
            assert list(axis.get_majorticklocs()) == inside, (ax.get_title(), axis.axis_name)
            checked += 1
    automatic = sum(type(axis.get_major_locator()).__name__ in ("AutoLocator", "MaxNLocator")
                    for ax in fig.axes for axis in (ax.xaxis, ax.yaxis))
    assert checked > 0 or automatic == 0


def test_ticks_past_the_view_are_not_made(tmp_path):
    with figure_style():
        fig = Figure(figsize=(3, 2), layout="constrained")
        ax = fig.subplots()
        ax.plot([0.0, 1.0], [0.0, 0.93])
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 0.93)
        save_figure(fig, tmp_path, "plain")
    assert list(ax.get_yticks()) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])  # matplotlib's own adds 1.0
    assert list(ax.get_xticks()) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.0", "0.2", "0.4", "0.6", "0.8"]


def test_an_empty_axis_label_is_not_placed(tmp_path, monkeypatch):
    # placing an axis label measures every tick label of the axis again, in each layout pass and in the draw;
    # save_figure spares the axes whose label is empty (nothing to place) and only those
    from matplotlib.axis import Axis

    placed: list[str] = []
    original = Axis._get_tick_boxes_siblings

    def counted(self, renderer):
        placed.append(f"{self.axes.get_title()}.{self.axis_name}")
        return original(self, renderer)

    monkeypatch.setattr(Axis, "_get_tick_boxes_siblings", counted)
    with figure_style():
        fig = Figure(figsize=(4, 2), layout="constrained")
        labelled, bare = fig.subplots(1, 2)
        for ax, title in ((labelled, "labelled"), (bare, "bare")):
            ax.plot([0, 1], [0, 1])
            ax.set_title(title)
        labelled.set_xlabel("x")
        labelled.set_ylabel("y")
        save_figure(fig, tmp_path, "labels")
    assert set(placed) == {"labelled.x", "labelled.y"}


@pytest.mark.parametrize("spec", FIGURES, ids=lambda s: s.name)
def test_the_axis_trims_leave_every_pixel_as_it_was(spec, request, tmp_path, monkeypatch):
    # save_figure makes only the ticks drawn, does not place empty axis labels and leaves titles at the top of
    # their axes where nothing can push them up; the picture is the one matplotlib draws without these, pixel
    # for pixel
    from learnact.reporting import saving

    view = load_study_view(request.getfixturevalue("tiny_regression_study" if spec.task == "regression"
                                                   else "tiny_study"))
    pngs = []
    for trimmed in (True, False):
        with monkeypatch.context() as patch:
            if not trimmed:
                patch.setattr(saving, "_ticks_in_view", lambda axis: None)
                patch.setattr(saving, "_no_label_no_placement", lambda axis: None)
                patch.setattr(saving, "_titles_at_the_top", lambda fig: None)
            with figure_style():
                built = spec.build(view)
                fig = built[0] if isinstance(built, tuple) else built
                save_figure(fig, tmp_path / str(trimmed), spec.name)
        with Image.open(tmp_path / str(trimmed) / f"{spec.name}.png") as im:
            pngs.append(np.asarray(im.convert("RGB")))
    assert pngs[0].shape == pngs[1].shape and np.array_equal(pngs[0], pngs[1])


@pytest.mark.parametrize("offset", [False, True], ids=["plain", "offset text"])
def test_titles_stay_put_unless_an_offset_text_could_push_them(offset, tmp_path, caplog):
    # matplotlib moves a title up past a y offset text (1e6) and measures the y axis to find out, in every layout
    # pass and in the draw: save_figure leaves the titles put (matplotlib's flag for a title placed by hand,
    # which it logs) only where no axes has such a text, and otherwise lets matplotlib move them
    import logging

    with figure_style():
        fig = Figure(figsize=(3, 2), layout="constrained")
        ax = fig.subplots()
        ax.plot([0.0, 1.0], [1e6, 3e6] if offset else [0.0, 3.0])
        ax.set_title("a title as wide as the axes, or wider")
        with caplog.at_level(logging.DEBUG, logger="matplotlib.axes._base"):
            save_figure(fig, tmp_path, "title")
    left_put = "title position was updated manually" in caplog.text
    assert left_put is not offset
    if offset:
        renderer = fig.canvas.get_renderer()
        assert ax.yaxis.offsetText.get_text()
        assert ax.title.get_window_extent(renderer).y0 >= ax.yaxis.offsetText.get_window_extent(renderer).y1 - 1


KEPT = {"text layouts": ("matplotlib.text", "Text", "_get_layout", "_layouts_kept"),
        "tick updates": ("matplotlib.axis", "Axis", "_update_ticks", "_ticks_kept")}
"""What save_figure keeps while it runs: the matplotlib method it wraps, and the saving module's context."""


def _with_and_without_kept(kind: str, make_figure, name: str, tmp_path, monkeypatch) -> tuple[list[bytes], list[int]]:
    """The PDF save_figure writes of ``make_figure()`` with and without ``kind`` kept (:data:`KEPT`), and how
    many times matplotlib's wrapped method ran for each."""
    import importlib

    from learnact.reporting import saving

    module, owner_name, method, context = KEPT[kind]
    owner = getattr(importlib.import_module(module), owner_name)
    original = getattr(owner, method)
    documents, calls_made = [], []
    for kept in (True, False):
        calls = []

        def counted(self, *args, calls=calls):
            calls.append(1)
            return original(self, *args)

        with monkeypatch.context() as patch:
            patch.setattr(owner, method, counted)
            if not kept:
                patch.setattr(saving, context, contextlib.nullcontext)
            with figure_style():
                save_figure(make_figure(), tmp_path / str(kept), name)
        documents.append((tmp_path / str(kept) / f"{name}.pdf").read_bytes())
        calls_made.append(len(calls))
    return documents, calls_made


@pytest.mark.parametrize("kind", KEPT)
@pytest.mark.parametrize("spec", FIGURES, ids=lambda s: s.name)
def test_kept_work_gives_the_same_files_with_fewer_calls(kind, spec, request, tmp_path, monkeypatch):
    # save_figure lays each text out once per renderer and state (saving._layouts_kept) and updates an axis' ticks
    # again only when its view, size, locators or tick lists changed (saving._ticks_kept): the PDF is the same
    # byte for byte, and matplotlib did that work fewer times
    view = load_study_view(request.getfixturevalue("tiny_regression_study" if spec.task == "regression"
                                                   else "tiny_study"))

    def make():
        built = spec.build(view)
        return built[0] if isinstance(built, tuple) else built

    documents, calls = _with_and_without_kept(kind, make, spec.name, tmp_path, monkeypatch)
    assert documents[0] == documents[1]
    assert 0 < calls[0] < calls[1]


@pytest.mark.parametrize("kind", KEPT)
@pytest.mark.parametrize("entry", SUITE_FIGURES, ids=lambda e: e[0])
def test_kept_work_gives_the_same_suite_figures(kind, entry, tmp_path, monkeypatch):
    # the suite's figures too, the IQM one drawn a second time, cropped (at matplotlib 3.11)
    name, _title, _caption, build = entry
    analysis = suite_analysis(_suite_tidy(), "accuracy", reps=50)
    documents, calls = _with_and_without_kept(kind, lambda: build(analysis)[0], name, tmp_path, monkeypatch)
    assert documents[0] == documents[1]
    # the critical-difference diagram draws no axis: no ticks to update
    assert 0 < calls[0] < calls[1] or (kind == "tick updates" and name == "cd_diagram" and calls == [0, 0])


@pytest.mark.parametrize("change", ["view", "size", "locator"])
def test_a_kept_tick_update_follows_what_the_ticks_depend_on(change, tmp_path):
    # a change of the view, the axes' size or the locator within a save updates the ticks again, as matplotlib
    # would: the ticks drawn are those of the axis as it is then
    from matplotlib import ticker

    from learnact.reporting import saving

    with figure_style():
        fig = Figure(figsize=(4, 3))
        ax = fig.add_subplot()
        ax.plot([0.0, 10.0], [0.0, 1.0])
        before = [t.get_loc() for t in ax.xaxis._update_ticks()]
        with saving._ticks_kept():
            assert [t.get_loc() for t in ax.xaxis._update_ticks()] == before
            if change == "view":
                ax.set_xlim(0.0, 100.0)
            elif change == "size":
                fig.set_size_inches(0.8, 3)
            else:
                ax.xaxis.set_major_locator(ticker.FixedLocator([2.5, 7.5]))
            kept = [t.get_loc() for t in ax.xaxis._update_ticks()]
        fresh = [t.get_loc() for t in ax.xaxis._update_ticks()]
    assert kept == fresh != before


@pytest.mark.parametrize("kind", KEPT)
def test_matplotlib_works_as_before_outside_a_save(kind, tmp_path):
    # the wrapped method is matplotlib's own again after a save, and after a save that failed
    import importlib

    from learnact.reporting import saving

    module, owner_name, method, context = KEPT[kind]
    owner = getattr(importlib.import_module(module), owner_name)
    before = owner.__dict__[method]
    with figure_style():
        fig = Figure()
        ax = fig.add_subplot()
        ax.plot([0, 1])
        ax.set_title("t")
        save_figure(fig, tmp_path, "one")
    assert owner.__dict__[method] is before
    with pytest.raises(RuntimeError), getattr(saving, context)():
        assert owner.__dict__[method] is not before
        raise RuntimeError("a failed save")
    assert owner.__dict__[method] is before


@pytest.mark.parametrize("case", ["bottom labels hidden", "top tick labels", "top ticks"])
def test_titles_stay_put_over_a_panel_without_bottom_labels(case, tmp_path, caplog, monkeypatch):
    # matplotlib measures an x axis whose ticks are "unknown" (bottom tick labels hidden: the upper panels of a
    # grid) to place the title above it. With nothing of the axis on the top side, save_figure leaves the titles
    # put: the PDF is the one matplotlib's own placement gives. Top tick labels or top tick marks could reach the
    # title: matplotlib places it then
    import logging

    from learnact.reporting import saving

    def make():
        fig = Figure(figsize=(3, 3), layout="constrained")
        upper, lower = fig.subplots(2, 1)
        for ax in (upper, lower):
            ax.plot([0.0, 1.0], [0.0, 3.0])
            ax.set_title("a title over the panel")
        upper.tick_params(labelbottom=False)
        if case == "top tick labels":
            upper.tick_params(labeltop=True)
        elif case == "top ticks":
            upper.tick_params(top=True)
        return fig

    documents = []
    for short_cut in (True, False):
        with monkeypatch.context() as patch:
            if not short_cut:
                patch.setattr(saving, "_titles_at_the_top", lambda fig: None)
            caplog.clear()
            with figure_style(), caplog.at_level(logging.DEBUG, logger="matplotlib.axes._base"):
                save_figure(make(), tmp_path / str(short_cut), "titles")
            if short_cut:
                left_put = "title position was updated manually" in caplog.text
        documents.append((tmp_path / str(short_cut) / "titles.pdf").read_bytes())
    assert left_put is (case == "bottom labels hidden")
    assert documents[0] == documents[1]


def test_agg_unhinted_at_72_dpi_measures_text_as_the_pdf_backend():
    # the constrained layout measures with Agg at 72 dpi and the PDF backend measures again as it draws: with the
    # report's style (no hinting), both give the same numbers to the last bit, so save_figure lays a text out
    # once for both (saving._measured_by); math text and other dpi are not shared
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.backends.backend_pdf import PdfFile, RendererPdf
    from matplotlib.font_manager import FontProperties
    from matplotlib.text import Text

    from learnact.reporting import saving

    strings = ["adaptive_entropy_T0.7_lam0.001", "\u03c6(x)", "\u22120.5", "Gate weight", "WAVE Tj", "lp", "1e-3"]
    with figure_style():
        agg, agg150 = RendererAgg(100, 100, 72.0), RendererAgg(100, 100, 150.0)
        pdf = RendererPdf(PdfFile(io.BytesIO()), 72.0, 100, 100)
        for size in (6.5, 7.5, 9.0, 11.0):
            for weight in ("normal", "bold"):
                prop = FontProperties(size=size, weight=weight)
                for s in strings:
                    assert agg.get_text_width_height_descent(s, prop, False) == \
                        pdf.get_text_width_height_descent(s, prop, False), (s, size, weight)
        fig = Figure()
        plain, math = Text(text="Gate weight"), Text(text="$\\alpha$")
        for t in (plain, math):
            t.set_figure(fig)
        assert saving._measured_by(plain, agg) == saving._measured_by(plain, pdf) == ("pdf-metrics",)
        assert saving._measured_by(math, agg) != saving._measured_by(math, pdf)
        assert saving._measured_by(plain, agg150) != saving._measured_by(plain, pdf)
    with matplotlib.rc_context({"text.hinting": "auto"}):  # hinted, Agg measures otherwise: not shared
        assert saving._measured_by(plain, agg) != ("pdf-metrics",)


def test_a_save_lays_each_plain_text_out_once_for_both_renderers(tiny_study, tmp_path, monkeypatch):
    # the layouts the constrained layout made with Agg serve the PDF's draw: the PDF renderer lays out only what
    # Agg did not (math text), and the PDF is the same byte for byte as with a layout per renderer
    from matplotlib.text import Text

    from learnact.reporting import saving

    view = load_study_view(tiny_study)
    spec = next(s for s in FIGURES if s.name == "gate_evolution")
    original = Text._get_layout
    documents, by_renderer = [], []
    for shared in (True, False):
        made: dict[str, int] = {}

        def counted(self, renderer, made=made):
            name = type(renderer).__name__
            made[name] = made.get(name, 0) + 1
            return original(self, renderer)

        with monkeypatch.context() as patch:
            patch.setattr(Text, "_get_layout", counted)
            if not shared:
                patch.setattr(saving, "_measured_by", lambda text, renderer: (id(renderer), type(renderer)))
            with figure_style():
                fig, _ = spec.build(view)
                save_figure(fig, tmp_path / str(shared), spec.name)
        documents.append((tmp_path / str(shared) / f"{spec.name}.pdf").read_bytes())
        by_renderer.append(made)
    assert documents[0] == documents[1]
    assert by_renderer[0].get("MixedModeRenderer", 0) == 0 < by_renderer[1]["MixedModeRenderer"]
    assert by_renderer[0]["RendererAgg"] == by_renderer[1]["RendererAgg"]
