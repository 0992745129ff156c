"""report/index.html: one self-contained page, checked by parsing it and by opening it in a headless browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from learnact.reporting import FIGURES

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class _Page(HTMLParser):
    """Every tag with its attributes, the ids, and the text of the leaderboard table's first column."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("id"):
            self.ids.add(str(a["id"]))


@pytest.fixture(scope="module")
def page(tiny_report) -> tuple[str, _Page]:
    text = (tiny_report / "index.html").read_text(encoding="utf-8")
    parsed = _Page()
    parsed.feed(text)
    return text, parsed


def test_every_drawn_figure_is_embedded_from_its_png(tiny_report, page):
    text, parsed = page
    images = [a for tag, a in parsed.tags if tag == "img"]
    drawn = [s for s in FIGURES if (tiny_report / "figures" / f"{s.name}.png").is_file()]
    assert drawn and len(images) == len(drawn)
    for spec, img in zip(drawn, images, strict=True):
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,"), spec.name
        assert base64.b64decode(src.split(",", 1)[1]) == (tiny_report / "figures" / f"{spec.name}.png").read_bytes()
        assert img["alt"] == spec.title


def test_it_loads_nothing_from_elsewhere_and_runs_no_script(page):
    text, parsed = page
    assert not [tag for tag, _ in parsed.tags if tag in ("script", "link", "iframe", "object")]
    for tag, a in parsed.tags:
        for key in ("src", "href"):
            value = a.get(key)
            assert value is None or value.startswith(("data:", "#")), (tag, key, value)


def test_contents_bar_links_to_every_table_and_figure(tiny_report, page):
    text, parsed = page
    links = [str(a["href"]) for tag, a in parsed.tags if tag == "a"]
    assert links and all(h[1:] in parsed.ids for h in links)
    md = (tiny_report / "index.md").read_text()
    assert len(links) == len(re.findall(r"^- \[(Table|Figure): ", md, flags=re.M))  # the index's contents


def test_tables_show_the_rows_of_the_markdown_tables(tiny_report, page):
    text, _ = page
    md = (tiny_report / "tables" / "leaderboard.md").read_text()
    variants = [line.split(" | ")[0][2:] for line in md.splitlines()[2:] if line.startswith("| ") and
                not line.startswith("| *")]
    shown = re.findall(r"<tr><td>([^<]+)</td>", text.split('id="table-leaderboard"')[1].split("</table>")[0])
    assert shown == variants


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _open(browser: str, page: Path, shot: Path) -> list[str]:
    """Open ``page`` headless, save a screenshot; the page's console messages."""
    proc = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", "--window-size=1280,1600", f"--screenshot={shot}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(_browser() is None, reason="no headless browser: install Debian's chromium package "
                                               "(apt-get install chromium) to open the HTML report")
def test_a_real_browser_shows_the_page_without_console_errors(tiny_report, tmp_path):
    browser = _browser()
    assert browser is not None
    # The check can fail: a page with a script error and a console message is seen as such.
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>console.error('planted'); nosuchfn();</script>"
                   "</body></html>")
    seen = " ".join(_open(browser, bad, tmp_path / "bad.png"))
    assert "planted" in seen and "nosuchfn" in seen
    console = _open(browser, tiny_report / "index.html", tmp_path / "shot.png")
    assert console == []
    pixels = imread(tmp_path / "shot.png")[..., :3]
    assert pixels.shape[:2] == (1600, 1280)
    ink = (pixels < 0.9).any(axis=-1).mean()  # share of pixels that are not (near) white
    assert ink > 0.03 and np.std(pixels) > 0.05, (ink, float(np.std(pixels)))
    # the contents bar is drawn: its own background (#f3f5f8) below the links
    np.testing.assert_allclose(pixels[1550, 100], np.array([243, 245, 248]) / 255, atol=2 / 255)


def test_captions_show_math_as_characters_not_tex(page):
    # only "$\\pm$" was converted: "\\pm 1", "\\lambda H(g)" and "\\varphi(x) = \\sum_k" reached the page
    text, _ = page
    for command in ("\\pm", "\\lambda", "\\varphi", "\\sum", "$"):
        assert command not in text.split("<body>")[1], command
    assert "\u00b1 1 standard deviation" in text and "\u03c6(x) = \u2211<sub>k</sub> g<sub>k</sub>" in text


def test_html_math_reads_back_what_latex_escape_writes():
    # one table for both directions: a character latex_escape writes as a math command is that command's text
    import re as _re

    from learnact.reporting.render import _GREEK_MACROS, _UNICODE_MATH, latex_escape, math_command_char

    written = {m.group(1): char for char, tex in _UNICODE_MATH.items()
               if (m := _re.fullmatch(r"\\ensuremath\{\\([A-Za-z]+)\}", tex))}
    assert written and all(math_command_char(command) == char for command, char in written.items())
    for name in _GREEK_MACROS:  # each letter's character, written by latex_escape, reads back as itself
        char = math_command_char(name)
        back = _re.fullmatch(r"\\ensuremath\{\\([A-Za-z]+)\}", latex_escape(char))
        assert char is not None and back is not None and math_command_char(back.group(1)) == char, name
    assert math_command_char("sum") == "\u2211" and math_command_char("nosuch") is None
