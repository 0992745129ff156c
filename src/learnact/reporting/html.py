"""``index.html``: the report as one self-contained page, beside ``index.md``.

Everything ``index.md`` shows (the protocol text, every table, every figure
with its caption, what was not drawn and why) on one page that opens in any
browser without the report folder: figures are embedded as PNG data URIs,
the style sheet is inline, and no script or remote resource is loaded. A
contents bar on the left links to each table and figure.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path

from .figures import FigureResult
from .index import SUITE_REPORT_PHRASE
from .render import Cell, Table, math_command_char

__all__ = ["index_html", "table_html"]

_STYLE = """
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
       background: #fff; }
nav { position: fixed; top: 0; left: 0; bottom: 0; width: 250px; overflow-y: auto; padding: 16px;
      background: #f3f5f8; border-right: 1px solid #d8dde4; box-sizing: border-box; font-size: 13px; }
nav h2 { font-size: 14px; margin: 0 0 8px; }
nav ol { padding-left: 18px; margin: 0; }
nav a { color: #0b5394; text-decoration: none; }
main { margin-left: 250px; padding: 24px 40px; max-width: 1100px; }
h1 { font-size: 26px; margin-top: 0; }
h2 { border-bottom: 1px solid #d8dde4; padding-bottom: 4px; margin-top: 36px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e3e7ec; }
th { border-bottom: 2px solid #1b1f24; text-align: left; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
td.c, th.c { text-align: center; }
tr.group td { font-style: italic; background: #f6f7f9; }
figure { margin: 12px 0 28px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ec; }
figcaption, p.caption, p.notes { font-size: 13px; color: #3d444d; }
"""


def _cell(cell: Cell, align: str) -> str:
    text = escape(cell.text)
    if cell.link is not None and text:
        text = f'<a href="{escape(cell.link)}.html">{text}</a>'

    cls = {"r": ' class="r"', "c": ' class="c"'}.get(align, "")
    return f"<td{cls}>{f'<b>{text}</b>' if cell.bold and text else text}</td>"


def table_html(table: Table) -> str:
    """The table as an HTML ``<table>`` (bold best cells, group rows spanning all columns)."""
    n = len(table.header)
    cls = {"r": ' class="r"', "c": ' class="c"'}
    head = "".join(f"<th{cls.get(a, '')}>{escape(h)}</th>" for h, a in zip(table.header, table.align, strict=True))
    rows = []
    for i, row in enumerate(table.rows):
        if i in table.group_titles:
            rows.append(f'<tr class="group"><td colspan="{n}">{escape(table.group_titles[i])}</td></tr>')
        rows.append("<tr>" + "".join(_cell(c, a) for c, a in zip(row, table.align, strict=True)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _math_text(math: str) -> str:
    """A caption's ``$...$`` math as plain text: commands as their characters, ``_k`` / ``_{ab}`` as subscripts."""
    out = re.sub(r"\\([A-Za-z]+)", lambda m: math_command_char(m.group(1)) or m.group(1), math)
    return re.sub(r"_\{([^}]*)\}|_([A-Za-z0-9])", lambda m: f"<sub>{escape(m.group(1) or m.group(2))}</sub>",
                  escape(out))


def _plain(text: str) -> str:
    """Caption text for HTML: text escaped, ``$...$`` math written with the characters it stands for
    (``$\\pm 1$``: ``\u00b1 1``, ``$\\varphi_k(x)$``: ``\u03c6<sub>k</sub>(x)``), never as raw TeX."""
    parts = text.split("$")
    return "".join(_math_text(p) if i % 2 else escape(p) for i, p in enumerate(parts))


def _anchor(kind: str, name: str) -> str:
    return f"{kind}-{name.replace('_', '-')}"


def index_html(title: str, protocol: Sequence[str], tables: Sequence[Table], figures: Sequence[FigureResult],
               skipped_tables: Sequence[tuple[str, str]] = ()) -> str:
    """The report as one self-contained HTML page (figures embedded from their PNG files).

    Args:
        title: Page title.
        protocol: Paragraphs describing the study (plain text).
        tables: Tables, shown inline.
        figures: Built figures (their PNG is read and embedded) and skipped ones (listed with why).
        skipped_tables: ``(name, reason)`` of tables the study had nothing for.
    """
    drawn = [f for f in figures if f.skipped is None]
    contents = [f'<li><a href="#{_anchor("table", t.name)}">Table: {escape(t.title or t.name)}</a></li>'
                for t in tables]
    contents += [f'<li><a href="#{_anchor("figure", f.spec.name)}">Figure: {escape(f.spec.title)}</a></li>'
                 for f in drawn]
    link = f'<a href="../index.html">{escape(SUITE_REPORT_PHRASE)}</a>'
    body = [f"<h1>{escape(title)}</h1>"] + [f"<p>{escape(p).replace(escape(SUITE_REPORT_PHRASE), link)}</p>"
                                            for p in protocol]
    body.append("<h2>Tables</h2>")
    for t in tables:
        body += [f'<section id="{_anchor("table", t.name)}"><h3>{escape(t.title or t.name)}</h3>',
                 f'<p class="caption">{_plain(t.caption)}</p>', table_html(t),
                 f'<p class="notes">{escape(t.notes)}</p>' if t.notes else "", "</section>"]
    body += [f"<p>Table <i>{escape(name)}</i> not built: {escape(reason)}.</p>" for name, reason in skipped_tables]
    body.append("<h2>Figures</h2>")
    if not drawn:  # a heading with nothing under it read as a page cut short
        body.append("<p>No figure was drawn for this study; each one's reason is listed below.</p>")
    for f in drawn:
        png = next(p for p in f.paths if Path(p).suffix == ".png")
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        body += [f'<section id="{_anchor("figure", f.spec.name)}"><h3>{escape(f.spec.title)}</h3>',
                 f'<figure><img src="data:image/png;base64,{data}" alt="{escape(f.spec.title)}">',
                 f"<figcaption>{_plain(f'{f.spec.caption} {f.detail}'.strip())}</figcaption></figure></section>"]
    skipped = [f for f in figures if f.skipped is not None]
    if skipped:
        body.append("<h2>Not drawn for this study</h2><ul>")
        body += [f"<li><b>{escape(f.spec.title)}</b>: {escape(str(f.skipped))}.</li>" for f in skipped]
        body.append("</ul>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style>", "</head>", "<body>",
        f'<nav><h2>Contents</h2><ol>{"".join(contents)}</ol></nav>',
        "<main>", *[b for b in body if b], "</main>", "</body>", "</html>", "",
    ])
