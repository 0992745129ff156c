"""Prints the fuzz figures (inputs tried per loader, crashes, slowest input) at the end of the session."""

from __future__ import annotations

import pytest
from fuzzkit import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("learnact fuzz figures")
    for loader, f in sorted(FIGURES.items()):
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(f.outcomes.items()))
        terminalreporter.write_line(
            f"{loader}: {f.tried} inputs ({kinds}), {f.crashes} crashes, slowest {f.slowest_s:.3f} s: "
            f"{f.slowest_input!r}")
