"""``learnact report``: build the report pack of a study (reporting stage)."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app

__all__ = ["report"]


@app.command()
def report(
    study: Path = typer.Argument(..., help="Study folder (made by `learnact run`)."),
    pdf: bool = typer.Option(False, "--pdf", help="Also compile report.tex to report.pdf (needs latexmk)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (default: STUDY/report)."),
) -> None:
    """Build STUDY/report: figures (PNG + PDF), tables (CSV, Markdown, LaTeX), report.tex, index.md and index.html.

    Reads the study folder only; nothing is retrained.
    """
    from .._gc import loading

    with loading():  # matplotlib and the report's code, with no collection walking them as they load
        from ..reporting import build_report
    from .errors import state
    from .progress import report_progress

    state.writes_to = out if out is not None else study / "report"
    folder = build_report(study, pdf=pdf, out=out, workers="auto", progress=report_progress(False))
    print(f"report: {folder / 'index.md'}  (HTML: {folder / 'index.html'})")
    print(f"latex:  {folder / ('report.pdf' if pdf else 'report.tex')}")
