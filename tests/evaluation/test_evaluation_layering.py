"""Evaluation rebuilds tables without the training code path, and its public names resolve."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import learnact.evaluation as evaluation

SRC = Path(evaluation.__file__).parent
LATER = ("learnact.training", "learnact.experiment", "learnact.reporting", "learnact.cli")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = "learnact.evaluation" if node.level else ""
            mod = node.module or ""
            if node.level == 2:
                base = "learnact"
            names.append(f"{base}.{mod}".strip(".") if node.level else mod)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def test_no_module_imports_a_later_stage():
    for path in sorted(SRC.glob("*.py")):
        bad = [n for n in _imports(path) if n.startswith(LATER) or n.split(".")[0] in ("training", "experiment")]
        assert not bad, f"{path.name} imports {bad}"


def test_importing_evaluation_loads_no_training_code():
    code = ("import sys, learnact.evaluation; "
            f"print([m for m in sys.modules if m.startswith({LATER!r})])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_resolve():
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None, name
    for fn in ("tidy_results", "write_results", "load_results", "seed_aggregates", "paired_comparisons",
               "gate_diagnostics", "diagnostics_table"):
        assert fn in evaluation.__all__ and getattr(evaluation, fn).__doc__
