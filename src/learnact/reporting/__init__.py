"""Reporting: the report pack of a study (figures, tables, LaTeX document), from its folder alone.

>>> from learnact.reporting import build_report
>>> build_report("my-study", pdf=True)  # doctest: +SKIP
PosixPath('my-study/report')

This stage reads run folders and :mod:`learnact.evaluation` tables; it never
imports the training or experiment code, so a report can be rebuilt anywhere
the study folder is copied.

The names below load their module (pandas, matplotlib) on first use, so
importing a light part such as :mod:`learnact.reporting.parallel` stays
cheap: ``learnact run`` starts the report workers' fork server that way
while it still writes run folders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .figures import FIGURES, FigureResult, FigureSpec, build_figures
    from .latex import TEX_INSTALL_HINT, ReportError, compile_pdf, latexmk_available
    from .render import Cell, Table, latex_escape, to_latex, to_markdown, write_table
    from .report import REPORT_DIR, TABLES, build_report
    from .study_view import NothingToShow, StudyView, load_study_view
    from .sweeps import Sweep, find_sweeps

_EXPORTS = {
    "figures": ("FIGURES", "FigureResult", "FigureSpec", "build_figures"),
    "latex": ("TEX_INSTALL_HINT", "ReportError", "compile_pdf", "latexmk_available"),
    "render": ("Cell", "Table", "latex_escape", "to_latex", "to_markdown", "write_table"),
    "report": ("REPORT_DIR", "TABLES", "build_report"),
    "study_view": ("NothingToShow", "StudyView", "load_study_view"),
    "sweeps": ("Sweep", "find_sweeps"),
}
_MODULE_OF = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "Cell",
    "FIGURES",
    "FigureResult",
    "FigureSpec",
    "NothingToShow",
    "REPORT_DIR",
    "ReportError",
    "StudyView",
    "Sweep",
    "TABLES",
    "TEX_INSTALL_HINT",
    "Table",
    "build_figures",
    "build_report",
    "compile_pdf",
    "find_sweeps",
    "latex_escape",
    "latexmk_available",
    "load_study_view",
    "to_latex",
    "to_markdown",
    "write_table",
]
