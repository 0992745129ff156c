"""`learnact report`: rebuilds from a copied study folder alone, fails in one line, skips what is absent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from learnact.cli.app import app
from learnact.cli.errors import run_cli
from learnact.reporting import TABLES, build_report
from learnact.reporting.figures import figures_for

# Neither the training code nor scikit-learn (about 1 s to import, 1.1 s of every report worker's start): the
# ROC and confusion figures use learnact.evaluation's NumPy roc_curve and confusion_matrix. Nor torch, for these
# studies of fixed activations: only the activation-shapes figure of gated and family variants evaluates the
# activations, with the models' own (torch) definitions.
TRAINING = ("learnact.training", "learnact.experiment", "sklearn", "torch")
TABLE_FILES = [f"{name}.{ext}" for name, _ in TABLES for ext in ("csv", "md", "tex")]

# Runs the report in a fresh interpreter and prints the modules of TRAINING it imported.
_SCRIPT = """
import json, sys
{call}
print(json.dumps(sorted(m for m in sys.modules if m.startswith({training!r}))))
"""


def _copy_study(study, dest):
    """Copy what a study folder holds (study.json and runs/), not its report or derived tables."""
    dest.mkdir()
    shutil.copy2(study / "study.json", dest / "study.json")
    shutil.copytree(study / "runs", dest / "runs")
    return dest


def _run(call: str) -> list[str]:
    code = _SCRIPT.format(call=call, training=TRAINING)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a second full report of the tiny study (about 40 s of CI)
def test_learnact_report_on_a_copied_study_rebuilds_the_same_tables(tiny_study, tiny_report, tmp_path, capsys):
    copy = _copy_study(tiny_study, tmp_path / "elsewhere")
    assert run_cli(app, ["report", str(copy)]) == 0
    assert str(copy / "report" / "index.md") in capsys.readouterr().out
    for name in TABLE_FILES:
        assert (copy / "report" / "tables" / name).read_bytes() == (tiny_report / "tables" / name).read_bytes(), name
    assert sorted(p.name for p in (copy / "report" / "figures").iterdir()) == \
        sorted(p.name for p in (tiny_report / "figures").iterdir())


def test_building_a_report_loads_no_training_code(fixed_only_study):
    # The set of modules loaded does not depend on the study; a small one keeps this quick.
    imported = _run(f"from learnact.reporting import build_report; build_report({str(fixed_only_study)!r})")
    assert imported == []
    assert (fixed_only_study / "report" / "tables" / "leaderboard.csv").is_file()


def test_learnact_report_command_loads_no_training_code(fixed_only_study):
    imported = _run("from learnact.cli.app import app\nfrom learnact.cli.errors import run_cli\n"
                    f"assert run_cli(app, ['report', {str(fixed_only_study)!r}]) == 0")
    assert imported == []


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "has no finished runs"),
    (lambda p: (p / "results.csv").write_text("a\n") and p / "results.csv",
     "is a file, not a study folder; give the folder `learnact run --out` wrote"),
])
def test_bad_study_folder_is_one_line_exit_2(tmp_path, capsys, make, pattern):
    folder = make(tmp_path)
    assert run_cli(app, ["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert pattern in err and str(folder) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_pdf_without_latexmk_says_what_to_install(fixed_only_study, monkeypatch, capsys):
    monkeypatch.setattr("learnact.reporting.latex.shutil.which", lambda name: None)
    assert run_cli(app, ["report", str(fixed_only_study), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "latexmk not found" in err and "texlive-latex-base texlive-latex-recommended lmodern latexmk" in err
    assert (fixed_only_study / "report" / "report.tex").is_file()  # the rest of the pack is still built


def test_a_failed_latex_run_is_one_line_and_leaves_no_partial_pdf(fixed_only_study, tmp_path, monkeypatch, capsys):
    # latexmk stopped mid-write (a LaTeX error, a full disk): the PDF it left is cut off, not a report to open
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "latexmk"
    fake.write_text("#!/bin/sh\nprintf '%%PDF-1.5 cut off' > report.pdf\n"
                    "echo \"! I can't write on file \\`report.pdf'.\"\nexit 12\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert run_cli(app, ["report", str(fixed_only_study), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "latexmk failed on" in err and "! I can't write on file" in err and "report.log" in err
    assert not (fixed_only_study / "report" / "report.pdf").exists()
    assert (fixed_only_study / "report" / "report.tex").is_file()  # the rest of the pack is built


def test_a_rebuild_that_fails_leaves_no_page_of_the_earlier_build(fixed_only_study, monkeypatch, capsys):
    # The rebuild removes the earlier build's figures and tables first; had it kept that build's index pages, a
    # failure part of the way (here a full disk while drawing) would leave pages pointing at files that are gone.
    import errno

    from learnact import store

    report = build_report(fixed_only_study)
    pages = [report / name for name in ("index.md", "index.html", "report.tex")]
    assert all(p.is_file() for p in pages)

    def full_disk(*args, **kwargs):
        raise store.write_error(report / "figures" / "leaderboard.png", OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr("learnact.reporting.report.build_figures", full_disk)
    assert run_cli(app, ["report", str(fixed_only_study)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "No space left on device" in err
    assert [p.name for p in pages if p.exists()] == []
    assert not list((report / "figures").glob("*.png"))


def test_study_without_gates_skips_gate_figures_and_says_why(fixed_only_study):
    report = build_report(fixed_only_study)
    gate_figures = {"gate_selectivity", "sweep_temperature", "sweep_entropy_weight", "activation_shapes",
                    "gate_weights", "gate_evolution", "case_studies"}
    for spec in figures_for("classification"):
        drawn = (report / "figures" / f"{spec.name}.png").is_file()
        assert drawn is (spec.name not in gate_figures), spec.name
    index = (report / "index.md").read_text()
    assert "## Not drawn for this study" in index and "the study has no gated variant" in index
    assert "Table *comparisons* not built: the study has a single variant" in index
    assert not (report / "tables" / "gate_diagnostics.csv").exists()
    assert "Figures not drawn for this study" in (report / "report.tex").read_text()


def test_parallel_figures_equal_serial_ones_and_the_command_loads_no_torch_or_matplotlib(tiny_study, tiny_report,
                                                                                       tmp_path):
    """`learnact report` draws the figures in worker processes: the same PNG bytes as one by one (the tiny_report
    fixture), and this process imports neither torch nor training code (the activation shapes need torch: a
    worker draws them), nor matplotlib (it hands the figures out and builds the tables)."""
    import os

    copy = _copy_study(tiny_study, tmp_path / "parallel")
    code = _SCRIPT.format(call=("from learnact.cli.app import app\nfrom learnact.cli.errors import run_cli\n"
                                f"assert run_cli(app, ['report', {str(copy)!r}]) == 0"),
                          training=(*TRAINING, "matplotlib"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LEARNACT_REPORT_WORKERS": "2"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    pngs = sorted(p.name for p in (tiny_report / "figures").glob("*.png"))
    assert len(pngs) >= 8 and "activation_shapes.png" in pngs
    for name in pngs:
        assert (copy / "report" / "figures" / name).read_bytes() == (tiny_report / "figures" / name).read_bytes(), \
            name
    assert (copy / "report" / "index.md").read_text() == (tiny_report / "index.md").read_text()
