"""Reporting: the report pack of a study (figures, tables, LaTeX document), from its folder alone.

>>> from learnact.reporting import build_report
>>> build_report("my-study", pdf=True)  # doctest: +SKIP
PosixPath('my-study/report')

This stage reads run folders and :mod:`learnact.evaluation` tables; it never
imports the training or experiment code, so a report can be rebuilt anywhere
the study folder is copied.
"""

from .figures import FIGURES, FigureResult, FigureSpec, build_figures
from .latex import TEX_INSTALL_HINT, ReportError, compile_pdf, latexmk_available
from .render import Cell, Table, latex_escape, to_latex, to_markdown, write_table
from .report import REPORT_DIR, TABLES, build_report
from .study_view import NothingToShow, StudyView, load_study_view
from .sweeps import Sweep, find_sweeps

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
