"""The static-check step of CI (scripts/lint.sh: ruff + mypy) passes on the tree and fails on a planted error."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None or importlib.util.find_spec("mypy") is None,
    reason="ruff or mypy not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what scripts/lint.sh reads: src/, tests/, pyproject.toml, the script (and mypy's cache, to be
    quick)."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "lint.sh", root / "scripts" / "lint.sh")
    if (ROOT / ".mypy_cache").is_dir():
        shutil.copytree(ROOT / ".mypy_cache", root / ".mypy_cache")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(root / "scripts" / "lint.sh")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)


def _planted(checkout: Path, rel: str, text: str) -> subprocess.CompletedProcess[str]:
    path = checkout / "src" / "learnact" / rel
    before = path.read_text()
    path.write_text(before + text)
    try:
        return _lint(checkout)
    finally:
        path.write_text(before)


def test_the_tree_passes(checkout: Path):
    out = _lint(checkout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All checks passed!" in out.stdout and "Success: no issues found" in out.stdout


def test_an_unused_import_fails_ruff(checkout: Path):
    out = _planted(checkout, "names.py", "\n\ndef _planted() -> None:\n    import os\n")
    assert out.returncode != 0
    assert "src/learnact/names.py" in out.stdout and "F401" in out.stdout, out.stdout


def test_a_type_error_fails_mypy(checkout: Path):
    out = _planted(checkout, "names.py", '\n\ndef _planted() -> int:\n    return "not an int"\n')
    assert out.returncode != 0
    assert 'src/learnact/names.py' in out.stdout and "[return-value]" in out.stdout, out.stdout
