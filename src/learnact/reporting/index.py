"""``index.md``: one page listing every figure (with a thumbnail) and table of the report."""

from __future__ import annotations

from collections.abc import Sequence

from .figures import FigureResult
from .render import Table, to_markdown

__all__ = ["SUITE_REPORT_PHRASE", "THUMBNAIL_WIDTH", "index_markdown"]

THUMBNAIL_WIDTH = 420
"""Width of figure thumbnails in pixels."""

SUITE_REPORT_PHRASE = "the suite report, one folder up"
"""How a data set's report of a suite names the suite's report in its protocol; ``index.md`` and ``index.html``
link it (``../index.md``, ``../index.html``)."""


def index_markdown(title: str, protocol: Sequence[str], tables: Sequence[Table], figures: Sequence[FigureResult],
                   skipped_tables: Sequence[tuple[str, str]] = (), pdf: bool = False) -> str:
    """The Markdown index of a report folder (paths relative to it).

    Args:
        title: Page title.
        protocol: Paragraphs describing the study.
        tables: Tables, shown inline with links to their CSV and LaTeX files.
        figures: Built figures (thumbnail linking to the PNG, plus the PDF) and skipped ones (with why).
        skipped_tables: ``(name, reason)`` of tables the study had nothing for.
        pdf: Whether ``report.pdf`` was built.
    """
    lines = [f"# {title}", ""]
    lines += [p.replace(SUITE_REPORT_PHRASE, f"[{SUITE_REPORT_PHRASE}](../index.md)") + "\n" for p in protocol]
    doc = "[report.tex](report.tex)" + (" and [report.pdf](report.pdf)" if pdf else
                                        " (compile it with `learnact report STUDY --pdf`)")
    lines += [f"The LaTeX report: {doc}.", "", "## Contents", ""]
    lines += [f"- [Table: {t.title or t.name}](#table-{t.name.replace('_', '-')})" for t in tables]
    lines += [f"- [Figure: {f.spec.title}](#figure-{f.spec.name.replace('_', '-')})" for f in figures
              if f.skipped is None]
    lines += ["", "## Tables", ""]
    for t in tables:
        lines += [f'<a id="table-{t.name.replace("_", "-")}"></a>', "", f"### {t.title or t.name}", "",
                  t.caption, "", to_markdown(t),
                  f"Files: [CSV](tables/{t.name}.csv) · [Markdown](tables/{t.name}.md) · "
                  f"[LaTeX](tables/{t.name}.tex)", ""]
    for name, reason in skipped_tables:
        lines += [f"- Table *{name}* not built: {reason}.", ""]
    lines += ["## Figures", ""]
    if all(f.skipped is not None for f in figures):  # a heading with nothing under it read as a page cut short
        lines += ["No figure was drawn for this study; each one's reason is listed below.", ""]
    for f in figures:
        if f.skipped is not None:
            continue
        stem = f"figures/{f.spec.name}"
        lines += [f'<a id="figure-{f.spec.name.replace("_", "-")}"></a>', "", f"### {f.spec.title}", "",
                  f'<a href="{stem}.png"><img src="{stem}.png" width="{THUMBNAIL_WIDTH}" alt="{f.spec.title}"></a>',
                  "", f"{f.spec.caption} {f.detail}".strip(), "",
                  f"Files: [PNG]({stem}.png) · [PDF]({stem}.pdf)", ""]
    skipped = [f for f in figures if f.skipped is not None]
    if skipped:
        lines += ["## Not drawn for this study", ""]
        lines += [f"- **{f.spec.title}**: {f.skipped}." for f in skipped]
        lines.append("")
    return "\n".join(lines)
