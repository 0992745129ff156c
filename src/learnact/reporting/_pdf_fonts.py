"""One font subset per font and process for the report's PDF figures (matplotlib's private API, here only).

matplotlib's PDF backend embeds in every PDF the subset of each font that
the figure's text uses, made by fontTools from the whole font file: 0.1 to
0.2 s of CPU a figure, about a tenth of a report's figures. Within
:func:`shared_subsets`, a font's subset covers a fixed set of characters
(:data:`COMMON`: printable ASCII and the symbols the report draws) and is
made once per process: every figure whose glyphs it holds embeds that same
subset (a few kB more than its own), whatever was drawn before it. A figure
drawing a glyph outside it gets its own subset, as without this module. The
glyphs drawn, their widths and the text extracted from the PDF are the same
either way; only the unused glyphs the file carries differ.

Only for matplotlib versions whose ``get_glyphs_subset`` takes glyph
indices and returns a context manager of ``SubsetResults`` (3.11); with any
other, :func:`shared_subsets` changes nothing (:func:`supported`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from matplotlib.backends import _backend_pdf_ps as _pdf_ps

__all__ = ["COMMON", "shared_subsets", "supported"]

COMMON = "".join(map(chr, range(32, 127))) + ("\u00b0\u00b1\u00b2\u00b7\u00d7\u0394\u03bb\u03c6\u2013\u2014\u2026\u2192"
                                              "\u2212\u2264\u2265")
"""Characters every shared subset holds: printable ASCII and the non-ASCII symbols the report draws."""

_ORIGINAL_SUBSET = getattr(_pdf_ps, "get_glyphs_subset", None)
_ORIGINAL_AS_FILE = getattr(_pdf_ps, "font_as_file", None)


def supported() -> bool:
    """Whether this matplotlib has the subsetting interface :func:`shared_subsets` works with."""
    return (_ORIGINAL_SUBSET is not None and _ORIGINAL_AS_FILE is not None
            and hasattr(_pdf_ps, "SubsetResults") and hasattr(_pdf_ps.SubsetResults, "_as_cm"))


class _Shared:
    """A font's shared subset: the glyph indices it holds, the subset (``SubsetResults``) and its bytes."""

    def __init__(self, glyphs: frozenset[int], results: Any) -> None:
        self.glyphs = glyphs
        self.results = results
        self.data = _ORIGINAL_AS_FILE(results.font).getvalue()  # type: ignore[misc]


_SHARED: dict[tuple[str, int], _Shared] = {}


def _key(fontfile: Any) -> tuple[str, int]:
    """The font file's path and face index (``fontfile``: matplotlib's ``FontPath``, or a plain path)."""
    return str(fontfile), int(getattr(fontfile, "face_index", 0) or 0)


def _common_glyphs(path: str, face_index: int) -> frozenset[int]:
    """Glyph indices of :data:`COMMON`'s characters in the font (those it has), as FreeType maps them."""
    from matplotlib.ft2font import FT2Font

    font = FT2Font(path, face_index=face_index)
    return frozenset(g for g in (font.get_char_index(ord(c)) for c in COMMON) if g)


@contextmanager
def _kept(results: Any) -> Iterator[Any]:
    yield results  # the shared subset stays open for the next figure (matplotlib's own closes it)


def _get_glyphs_subset(fontfile: Any, glyphs: Any) -> Any:
    wanted = frozenset(int(g) for g in glyphs)
    key = _key(fontfile)
    shared = _SHARED.get(key)
    if shared is None:
        common = _common_glyphs(*key)
        with _ORIGINAL_SUBSET(fontfile, set(common)) as results:  # type: ignore[misc]
            shared = _SHARED[key] = _Shared(common, results)
        # matplotlib's context manager closed the font; the saved bytes and the index map are what is reused
    if not wanted <= shared.glyphs:
        return _ORIGINAL_SUBSET(fontfile, glyphs)  # type: ignore[misc]
    return _kept(shared.results)


def _font_as_file(font: Any) -> io.BytesIO:
    for shared in _SHARED.values():
        if font is shared.results.font:
            return io.BytesIO(shared.data)
    return _ORIGINAL_AS_FILE(font)  # type: ignore[misc]


@contextmanager
def shared_subsets() -> Iterator[None]:
    """Within this block, PDFs saved by matplotlib embed each font's shared subset where it holds their glyphs.

    Does nothing where :func:`supported` is False. Not thread-safe (it swaps
    two functions of matplotlib's PDF backend while it runs).
    """
    if not supported():
        yield
        return
    _pdf_ps.get_glyphs_subset = _get_glyphs_subset
    _pdf_ps.font_as_file = _font_as_file
    try:
        yield
    finally:
        _pdf_ps.get_glyphs_subset = _ORIGINAL_SUBSET  # type: ignore[assignment]
        _pdf_ps.font_as_file = _ORIGINAL_AS_FILE  # type: ignore[assignment]
