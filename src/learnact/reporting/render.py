"""Tables for people: one formatted table rendered to Markdown and LaTeX (booktabs), plus CSV.

A :class:`Table` holds display cells (text with an optional bold flag), the
row groups that get a rule between them, and the numeric data behind it
(written as CSV, for machines). Numbers are formatted in Python, so the
LaTeX needs only ``booktabs`` and ``graphicx``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..store import atomic_write, write_text_atomic

__all__ = ["Cell", "PAGES", "TABLE_FORMATS", "Table", "latex_escape", "math_command_char", "remove_earlier_build",
           "to_markdown", "to_latex", "write_table"]

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
}
_UNICODE_MATH = {
    "\u00b1": r"\ensuremath{\pm}", "\u03bb": r"\ensuremath{\lambda}", "\u03c6": r"\ensuremath{\varphi}",
    "\u0394": r"\ensuremath{\Delta}", "\u2212": r"\ensuremath{-}", "\u2264": r"\ensuremath{\le}",
    "\u2265": r"\ensuremath{\ge}", "\u00d7": r"\ensuremath{\times}", "\u2013": r"\textendash{}",
    "\u2014": r"\textemdash{}",
    "\u2026": r"\dots{}", "\u00b7": r"\ensuremath{\cdot}", "\u2192": r"\ensuremath{\to}",
    "\u00b2": r"\ensuremath{^2}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in [*_LATEX_SPECIALS, *_UNICODE_MATH]) + "|[^\x00-\x7e]")
_MINUS_RE = re.compile(r"(?<![\w.])-(?=\d)")
_PDFLATEX_TEXT = ((0x00A0, 0x00B7), (0x00B9, 0x0125), (0x0128, 0x0137), (0x0139, 0x013E), (0x0141, 0x0148),
                  (0x014A, 0x0165), (0x0168, 0x017E), (0x0192, 0x0192), (0x01C4, 0x01D4), (0x01E2, 0x01E3),
                  (0x01E6, 0x01EB), (0x01F0, 0x01F0), (0x01F4, 0x01F5), (0x0218, 0x021B), (0x0232, 0x0233),
                  (0x0237, 0x0237), (0x02C7, 0x02C7), (0x02D8, 0x02D9), (0x02DB, 0x02DB), (0x02DD, 0x02DD),
                  (0x0E3F, 0x0E3F), (0x1E02, 0x1E03), (0x1E0D, 0x1E0D), (0x1E1E, 0x1E21), (0x1E25, 0x1E25),
                  (0x1E30, 0x1E31), (0x1E37, 0x1E37), (0x1E43, 0x1E43), (0x1E45, 0x1E45), (0x1E47, 0x1E47),
                  (0x1E5B, 0x1E5B), (0x1E63, 0x1E63), (0x1E6D, 0x1E6D), (0x1E8E, 0x1E91), (0x1E9E, 0x1E9E),
                  (0x1EF2, 0x1EF3), (0x2010, 0x2016), (0x2018, 0x201A), (0x201C, 0x201E), (0x2020, 0x2022),
                  (0x2030, 0x2031), (0x2039, 0x203B), (0x203D, 0x203D), (0x2044, 0x2044), (0x204E, 0x204E),
                  (0x2052, 0x2052), (0x20A1, 0x20A1), (0x20A4, 0x20A4), (0x20A6, 0x20A6), (0x20A9, 0x20A9),
                  (0x20AB, 0x20AC), (0x20B1, 0x20B1), (0x2103, 0x2103), (0x2116, 0x2117), (0x211E, 0x211E),
                  (0x2120, 0x2120), (0x2122, 0x2122), (0x2126, 0x2127), (0x212E, 0x212E), (0x2190, 0x2193),
                  (0x2329, 0x232A), (0x2422, 0x2423), (0x25E6, 0x25E6), (0x25EF, 0x25EF), (0x266A, 0x266A),
                  (0x27E8, 0x27E9), (0x3008, 0x3009), (0xFB00, 0xFB06))
"""Code points past ASCII that the report's preamble (``T1`` fonts, ``utf8`` input) typesets as they are: those
LaTeX's ``t1enc.dfu`` and ``ts1enc.dfu`` declare (accented Latin letters, quotes and dashes, a few symbols).
Others stop pdflatex with "Unicode character ... not set up for use with LaTeX"."""
_GREEK_MACROS = frozenset({"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi",
                           "Omega", "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
                           "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
                           "psi", "omega"})
"""The Greek letters plain LaTeX has a math macro for (``\\alpha``, ``\\Gamma``)."""
_GREEK_AS_LATIN = {"Alpha": "A", "Beta": "B", "Epsilon": "E", "Zeta": "Z", "Eta": "H", "Iota": "I", "Kappa": "K",
                   "Mu": "M", "Nu": "N", "Omicron": "O", "Rho": "P", "Tau": "T", "Chi": "X", "omicron": "o"}


_COMMAND_CHARS = {**{m.group(1): char for char, tex in _UNICODE_MATH.items()
                     if (m := re.fullmatch(r"\\ensuremath\{\\([A-Za-z]+)\}", tex))}, "sum": "\u2211"}
"""TeX math commands and the characters they stand for: the inverse of :data:`_UNICODE_MATH` (``pm``: ±), and
the summation sign the captions use."""


def math_command_char(command: str) -> str | None:
    """The character the TeX math command ``command`` (without its backslash: ``"pm"``, ``"varphi"``,
    ``"Gamma"``) stands for, read from the tables :func:`latex_escape` writes characters with (a Greek letter
    by its Unicode name); ``None`` for a command it does not know."""
    if command in _COMMAND_CHARS:
        return _COMMAND_CHARS[command]
    if command in _GREEK_MACROS:
        case = "CAPITAL" if command[0].isupper() else "SMALL"
        return unicodedata.lookup(f"GREEK {case} LETTER {command.upper().replace('LAMBDA', 'LAMDA')}")
    return None


def _unicode_latex(char: str) -> str:
    r"""A character past ASCII for pdflatex: itself where the preamble sets it up (accented Latin letters), a
    Greek letter as math (alpha -> ``\ensuremath{\alpha}``), anything else as its code point
    (``\texttt{U+6A21}``), so that any name compiles and stays identifiable."""
    if any(lo <= ord(char) <= hi for lo, hi in _PDFLATEX_TEXT):
        return char
    name = unicodedata.name(char, "")
    for case, prefix in (("small", "GREEK SMALL LETTER "), ("capital", "GREEK CAPITAL LETTER ")):
        if name.startswith(prefix) and " " not in name[len(prefix):]:
            letter = name[len(prefix):].lower().replace("lamda", "lambda")
            letter = letter if case == "small" else letter.capitalize()
            if letter in _GREEK_AS_LATIN:
                return rf"\ensuremath{{\mathrm{{{_GREEK_AS_LATIN[letter]}}}}}"
            if letter in _GREEK_MACROS:
                return rf"\ensuremath{{\{letter}}}"
    if name == "GREEK SMALL LETTER FINAL SIGMA":
        return r"\ensuremath{\varsigma}"
    return rf"\texttt{{U+{ord(char):04X}}}"


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters and map the few Unicode symbols used (\u00b1, \u03bb, ...) to math.

    A hyphen that starts a number (``-0.002``) becomes a math minus. Past
    ASCII, accented Latin letters stay as they are, Greek letters become
    math, and any other character its code point (:func:`_unicode_latex`):
    a variant named in Chinese or Cyrillic compiles, as ``U+6A21...``.

    >>> print(latex_escape("adaptive_T0.7 & 5% -0.1"))
    adaptive\\_T0.7 \\& 5\\% \\ensuremath{-}0.1
    """
    escaped = _LATEX_RE.sub(lambda m: _LATEX_SPECIALS.get(m.group(0)) or _UNICODE_MATH.get(m.group(0))
                            or _unicode_latex(m.group(0)), str(text))
    return _MINUS_RE.sub(r"\\ensuremath{-}", escaped)


@dataclass(frozen=True)
class Cell:
    """One display cell: its text, whether it is set in bold (best of its column), and the page of the pack
    it links to, if any (``link``: a path relative to the report folder without its suffix, such as
    ``"iris/index"``; Markdown links ``<link>.md``, HTML ``<link>.html``, LaTeX shows the text alone)."""

    text: str
    bold: bool = False
    link: str | None = None


@dataclass
class Table:
    """A formatted table and the numeric data behind it.

    Attributes:
        name: File stem (``"leaderboard"``).
        caption: Caption (plain text; escaped for LaTeX when rendered).
        header: Column headers (plain text).
        rows: Display rows, one :class:`Cell` per column.
        align: One LaTeX alignment letter per column (``"l"``, ``"r"``, ``"c"``).
        rules_before: Row indices that get a ``\\midrule`` (group boundaries).
        group_titles: Row index -> title of a group row spanning all columns.
        data: The numbers, written as CSV.
        notes: A sentence under the table (legend of bold, abbreviations).
        title: Short title for the index (defaults to the name).
    """

    name: str
    caption: str
    header: list[str]
    rows: list[list[Cell]]
    align: str
    data: pd.DataFrame
    rules_before: list[int] = field(default_factory=list)
    group_titles: dict[int, str] = field(default_factory=dict)
    notes: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        widths = {len(r) for r in self.rows}
        if widths - {len(self.header)} or len(self.align) != len(self.header):
            raise ValueError(f"table {self.name!r}: header has {len(self.header)} columns, align "
                             f"{self.align!r}, rows have {sorted(widths)}")


def _md_cell(cell: Cell) -> str:
    text = cell.text.replace("|", "\\|")
    if cell.link is not None and text:
        text = f"[{text}]({cell.link}.md)"
    return f"**{text}**" if cell.bold and text else text


def to_markdown(table: Table) -> str:
    """The table as GitHub-flavoured Markdown (bold best cells, group rows in italics)."""
    align = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(table.header) + " |", "| " + " | ".join(align[a] for a in table.align) + " |"]
    for i, row in enumerate(table.rows):
        if i in table.group_titles:
            lines.append("| " + " | ".join([f"*{table.group_titles[i]}*"] + [""] * (len(row) - 1)) + " |")
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    if table.notes:
        lines += ["", table.notes]
    return "\n".join(lines) + "\n"


def _tex_cell(cell: Cell) -> str:
    text = latex_escape(cell.text)
    return f"\\textbf{{{text}}}" if cell.bold and text else text


def to_latex(table: Table, label_prefix: str = "tab:") -> str:
    """The table as a ``table`` float with ``booktabs`` rules, scaled down only if wider than the line."""
    n = len(table.header)
    body = [r"\toprule", " & ".join(f"\\textbf{{{latex_escape(h)}}}" for h in table.header) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        if i in table.rules_before and i > 0:
            body.append(r"\midrule")
        if i in table.group_titles:
            body.append(f"\\multicolumn{{{n}}}{{l}}{{\\textit{{{latex_escape(table.group_titles[i])}}}}} \\\\")
        body.append(" & ".join(_tex_cell(c) for c in row) + r" \\")
    body.append(r"\bottomrule")
    caption = latex_escape(table.caption) + (" " + latex_escape(table.notes) if table.notes else "")
    return "\n".join([
        r"% Generated by `learnact report`; needs the LaTeX packages booktabs and graphicx.",
        r"\begin{table}",
        r"\centering",
        r"\small",
        f"\\caption{{{caption}}}",
        f"\\label{{{label_prefix}{table.name}}}",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        f"\\begin{{tabular}}{{{table.align}}}",
        *body,
        r"\end{tabular}}",
        r"\end{table}",
        "",
    ])


TABLE_FORMATS = ("csv", "md", "tex")
"""The files :func:`write_table` writes per table, in its order."""

PAGES = ("index.md", "index.html", "report.tex", "report.pdf")
"""A report pack's pages, beside its ``figures/`` and ``tables/``."""


def write_table(table: Table, folder: Path) -> list[Path]:
    """Write ``<name>.csv``, ``<name>.md`` and ``<name>.tex`` into ``folder``; returns the paths.

    Each file is written through a temporary file and a rename, so a full disk leaves none half-written.

    Raises:
        RunStoreError: An OS error while writing (full disk, read-only folder), naming the file and the fix.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{table.name}.{ext}" for ext in TABLE_FORMATS]
    with atomic_write(paths[0]) as tmp:
        table.data.to_csv(tmp, index=False)  # full precision: the numbers leaderboard.csv holds
    write_text_atomic(paths[1], to_markdown(table))
    write_text_atomic(paths[2], to_latex(table))
    return paths


def remove_earlier_build(folder: Path, figures: Iterable[str], tables: Iterable[str]) -> None:
    """Remove the files an earlier build of a report pack wrote in ``folder`` (only those names).

    The figures (PNG and PDF), the tables (:data:`TABLE_FORMATS`) and the pages (:data:`PAGES`) all go: a build
    that fails part of the way (a full disk) must not leave an earlier build's page pointing at figures and
    tables it removed. Any other file is left alone.

    Args:
        folder: The report folder.
        figures: Figure names (``figures/<name>.png`` and ``.pdf``).
        tables: Table names (``tables/<name>.csv``, ``.md``, ``.tex``).
    """
    stale = [folder / "figures" / f"{name}.{ext}" for name in figures for ext in ("png", "pdf")]
    stale += [folder / "tables" / f"{name}.{ext}" for name in tables for ext in TABLE_FORMATS]
    stale += [folder / page for page in PAGES]
    for path in stale:
        path.unlink(missing_ok=True)
