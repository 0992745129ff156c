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

The shared subset is also kept on disk, under
``$LEARNACT_CACHE_DIR/font-subsets`` (default ``~/.cache/learnact``), keyed by
the font file's content and the matplotlib and fontTools versions: making it
was 0.25-0.3 s of the first figure of every report worker, and every worker
made the same one. A cached subset is used only when its recorded hash
matches its bytes and it holds the glyphs asked for; anything else (a
missing, truncated or edited file, a folder that cannot be written) makes the
subset afresh, as before, and writes it through a temporary file and a
rename. The PDFs are the same byte for byte either way.

Only for matplotlib versions whose ``get_glyphs_subset`` takes glyph
indices and returns a context manager of ``SubsetResults`` (3.11); with any
other, :func:`shared_subsets` changes nothing (:func:`supported`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends import _backend_pdf_ps as _pdf_ps

from ..exceptions import RunStoreError
from ..store import atomic_write

__all__ = ["CACHE_ENV", "COMMON", "cache_folder", "shared_subsets", "supported"]

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

    def __init__(self, glyphs: frozenset[int], results: Any, data: bytes | None = None) -> None:
        self.glyphs = glyphs
        self.results = results
        self.data = data if data is not None else _ORIGINAL_AS_FILE(results.font).getvalue()  # type: ignore[misc]


CACHE_ENV = "LEARNACT_CACHE_DIR"
"""Environment variable naming the cache folder (default ``~/.cache/learnact``); the subsets go in ``font-subsets``."""

_FORMAT = 1


def cache_folder() -> Path:
    """Where the shared subsets are kept on disk."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "learnact") / "font-subsets"


def _cache_path(path: str, face_index: int) -> Path | None:
    """The cache file of the shared subset of this font face, or ``None`` where the font cannot be read."""
    import fontTools  # type: ignore[import-untyped]

    try:
        content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        folder = cache_folder()
    except (OSError, RuntimeError, KeyError):  # an unreadable font; no home folder to find (Path.home)
        return None
    key = json.dumps([_FORMAT, content, face_index, COMMON, matplotlib.__version__, fontTools.version])
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.subset"


def _read_cached(file: Path, glyphs: frozenset[int]) -> _Shared | None:
    """The shared subset kept in ``file``, if it is whole, unedited and holds ``glyphs``; else ``None``."""
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

    try:
        header, data = file.read_bytes().split(b"\n", 1)
        meta = json.loads(header)
        if (meta.get("format") != _FORMAT or meta.get("glyphs") != sorted(glyphs)
                or meta.get("sha256") != hashlib.sha256(data).hexdigest()):
            return None
        index_map = {int(k): int(v) for k, v in meta["glyph_index_map"].items()}
        font = TTFont(io.BytesIO(data), lazy=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return _Shared(glyphs, _pdf_ps.SubsetResults(font, index_map), data)


def _write_cached(file: Path, shared: _Shared) -> None:
    """Keep ``shared`` in ``file`` (through a temporary file and a rename); a folder that cannot be written is
    left alone: the subset is then made again by the next process."""
    meta = {"format": _FORMAT, "glyphs": sorted(shared.glyphs), "sha256": hashlib.sha256(shared.data).hexdigest(),
            "glyph_index_map": {str(k): int(v) for k, v in shared.results.glyph_index_map.items()}}
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(file) as tmp:
            tmp.write_bytes(json.dumps(meta).encode() + b"\n" + shared.data)
    except (OSError, RunStoreError):  # atomic_write has removed its temporary file
        pass


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
        file = _cache_path(*key)
        shared = _read_cached(file, common) if file is not None else None
        if shared is None:
            with _ORIGINAL_SUBSET(fontfile, set(common)) as results:  # type: ignore[misc]
                shared = _Shared(common, results)
            # matplotlib's context manager closed the font; the saved bytes and the index map are what is reused
            if file is not None:
                _write_cached(file, shared)
        _SHARED[key] = shared
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
