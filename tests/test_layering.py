"""The package's layering, enforced from the modules' import statements.

Every ``import`` / ``from ... import`` in ``src/learnact`` (module level, inside
functions, under ``if TYPE_CHECKING:``; relative and absolute) is resolved to
the learnact module it loads, and each module's stage is looked up in
:data:`STAGES`. A module may import its own stage and earlier ones; an import
of a later stage fails the test, naming the file, line and stages, unless it is
one of the few :data:`ALLOWED` with its reason. docs/DESIGN.md shows this table.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "learnact"

# (stage, module prefixes, why it sits here), in order: a module may import only its own stage and earlier ones.
STAGES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("leaves", ("learnact.exceptions", "learnact._checks", "learnact._processes", "learnact.plugins", "learnact._lazy",
                "learnact._blas", "learnact._gc", "learnact._hooks", "learnact._torch_import"),
     "exception types, name suggestions, process helpers, importing user plugins, lazy package exports, the "
     "OpenBLAS thread setting, the collector around big imports, callbacks at points of the work, PyTorch's import "
     "for the command: import only each other"),
    ("names", ("learnact.names",),
     "the registry of names configs refer to (candidates, families, data sets, ...); no torch"),
    ("schema", ("learnact.family_params", "learnact._config_errors", "learnact.config"),
     "pydantic configs and their error messages; check names against the registry only, so no torch"),
    ("data", ("learnact.data",), "data sets and per-seed splits"),
    ("model", ("learnact.model",), "activations and the MLP; register their names into the registry"),
    ("api", ("learnact",), "the package root (its __init__ only) re-exports config and, lazily, model names"),
    ("training", ("learnact.training",), "fits models on splits"),
    ("store", ("learnact.store",),
     "the run store: what training produced, on disk (reads configs only); evaluation onward read it"),
    ("evaluation", ("learnact.evaluation",), "metrics, tidy results, statistics from the store"),
    ("sklearn", ("learnact.sklearn",),
     "the scikit-learn estimator: a front end over data, model, training and the metrics; no experiment code"),
    ("reporting", ("learnact.reporting",), "tables, figures, the report pack from evaluated results"),
    ("experiment", ("learnact.experiment",), "study files, engines, executors, the runner"),
    ("cli", ("learnact.cli", "learnact.__main__"), "the command line; may import everything"),
)

# (importing module, imported module): reason. Each must still be needed (a stale entry fails the test).
ALLOWED: dict[tuple[str, str], str] = {
    ("learnact.names", "learnact.family_params"): (
        "an annotation only, under TYPE_CHECKING: the registry maps family names to FamilyParams classes, "
        "which learnact.family_params registers into it when imported"),
}


def module_name(path: Path, root: Path) -> str:
    """``learnact.model.backbone`` for ``root/model/backbone.py`` (``root`` is the package folder)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage_of(module: str) -> int | None:
    """Index in :data:`STAGES` of the longest prefix matching ``module``."""
    best, best_len = None, -1
    for i, (_, prefixes, _) in enumerate(STAGES):
        for p in prefixes:
            inside = module == p or (p != "learnact" and module.startswith(p + "."))  # the root: its __init__ only
            if inside and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def imports_of(path: Path, module: str, known: set[str]) -> list[tuple[int, str]]:
    """``(line, learnact module)`` for every import in ``path`` that loads a learnact module."""
    is_package = path.name == "__init__.py"
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "learnact"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "learnact":
                continue
            for alias in node.names:  # ``from .. import store`` loads learnact.store, not only learnact
                sub = f"{target}.{alias.name}"
                out.append((node.lineno, sub if sub in known else target))
    return out


def check(root: Path) -> tuple[list[str], int, int]:
    """Layering violations under package folder ``root``, and the numbers of modules and imports checked."""
    files = sorted(root.rglob("*.py"))
    known = {module_name(f, root) for f in files}
    problems: list[str] = []
    n_imports = 0
    used_allowed: set[tuple[str, str]] = set()
    for f in files:
        mod = module_name(f, root)
        here = stage_of(mod)
        rel = f.relative_to(root.parent).as_posix()
        if here is None:
            problems.append(f"{rel}: module {mod} is in no stage; add it to STAGES in tests/test_layering.py")
            continue
        for line, target in imports_of(f, mod, known):
            n_imports += 1
            there = stage_of(target)
            if there is None or there <= here:
                continue
            if (mod, target) in ALLOWED:
                used_allowed.add((mod, target))
                continue
            problems.append(f"{rel}:{line} imports {target} (stage {STAGES[there][0]} after {STAGES[here][0]})")
    for pair in sorted(set(ALLOWED) - used_allowed):
        if root == SRC:
            problems.append(f"allowed exception {pair} is no longer needed; remove it from ALLOWED")
    return problems, len(files), n_imports


def test_the_package_respects_the_stages():
    problems, n_modules, n_imports = check(SRC)
    assert n_modules > 60 and n_imports > 250, (n_modules, n_imports)  # never vacuous: it saw the package
    assert not problems, "\n".join(problems)


def test_every_stage_holds_a_module():
    known = {module_name(f, SRC) for f in SRC.rglob("*.py")}
    for stage, prefixes, _ in STAGES:
        assert any(stage_of(m) == [s for s, _, _ in STAGES].index(stage) for m in known), stage
        assert all(any(m == p or m.startswith(p + ".") for m in known) for p in prefixes), prefixes


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    root = tmp_path / "learnact"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.cpp"))
    assert check(root)[0] == []
    return root


def test_a_planted_lazy_back_import_is_reported(package_copy: Path):
    backbone = package_copy / "model" / "backbone.py"
    lines = backbone.read_text().splitlines()
    lines += ["", "", "def _planted():", "    from ..experiment import runner", "    return runner", ""]
    backbone.write_text("\n".join(lines))
    problems, _, _ = check(package_copy)
    assert problems == [f"learnact/model/backbone.py:{len(lines) - 2} imports learnact.experiment.runner "
                        f"(stage experiment after model)"]


def test_a_planted_absolute_module_import_is_reported(package_copy: Path):
    (package_copy / "data" / "planted.py").write_text('"""planted"""\n\nimport learnact.reporting.figures\n')
    (package_copy / "names.py").write_text((package_copy / "names.py").read_text()
                                           + "\nfrom . import config  # planted\n")
    problems, _, _ = check(package_copy)
    assert sorted(problems) == sorted([
        "learnact/data/planted.py:3 imports learnact.reporting.figures (stage reporting after data)",
        f"learnact/names.py:{len((package_copy / 'names.py').read_text().splitlines())} imports learnact.config "
        "(stage schema after names)",
    ])


def test_a_module_outside_every_stage_is_reported(package_copy: Path):
    (package_copy / "model" / "planted.py").write_text("x = 1\n")
    assert check(package_copy)[0] == []  # inside a stage's package: fine
    STAGES_BEFORE = STAGES
    try:
        globals()["STAGES"] = tuple(s for s in STAGES if s[0] != "sklearn")
        problems, _, _ = check(package_copy)
    finally:
        globals()["STAGES"] = STAGES_BEFORE
    assert any("learnact/sklearn.py: module learnact.sklearn is in no stage" in p for p in problems), problems


def test_importing_evaluation_loads_no_later_stage():
    later = ("learnact.training", "learnact.experiment", "learnact.reporting", "learnact.cli")
    code = f"import sys, learnact.evaluation; print([m for m in sys.modules if m.startswith({later!r})])"
    env = {"PYTHONPATH": str(SRC.parent), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("package", ["learnact", "learnact.data", "learnact.model", "learnact.training",
                                     "learnact.evaluation", "learnact.reporting", "learnact.experiment"])
def test_public_names_are_defined_once(package):
    import importlib

    mod = importlib.import_module(package)
    assert len(mod.__all__) == len(set(mod.__all__)), sorted(n for n in mod.__all__ if mod.__all__.count(n) > 1)
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ names undefined {missing}"


# Pairs of modules that import each other, with the reason each is sound. A new pair fails the test below.
MUTUAL: dict[frozenset[str], str] = {
    **{frozenset({"learnact.cli.app", f"learnact.cli.{cmd}"}): (
        "the Typer app registers each command module, which decorates its function with the app")
       for cmd in ("compare_cmd", "init_cmd", "list_cmd", "predict_cmd", "report_cmd", "run_cmd")},
    frozenset({"learnact.names", "learnact.family_params"}): (
        "names refers to FamilyParams in an annotation only (TYPE_CHECKING); family_params registers into names"),
}


def mutual_imports(root: Path) -> set[frozenset[str]]:
    """Pairs of modules under ``root`` that import each other (at module level or lazily)."""
    files = sorted(root.rglob("*.py"))
    known = {module_name(f, root) for f in files}
    graph = {module_name(f, root): {t for _, t in imports_of(f, module_name(f, root), known)} for f in files}
    return {frozenset({a, b}) for a, targets in graph.items() for b in targets
            if a != b and a in graph.get(b, set())}


def test_no_two_modules_import_each_other_without_a_reason():
    pairs = mutual_imports(SRC)
    unexplained = sorted(" <-> ".join(sorted(p)) for p in pairs - set(MUTUAL))
    assert not unexplained, f"modules importing each other (break the cycle or add it to MUTUAL): {unexplained}"
    stale = sorted(" <-> ".join(sorted(p)) for p in set(MUTUAL) - pairs)
    assert not stale, f"MUTUAL lists pairs that no longer import each other: {stale}"


def test_a_planted_mutual_import_is_reported(package_copy: Path):
    results = package_copy / "evaluation" / "results.py"
    diagnostics = package_copy / "evaluation" / "diagnostics.py"
    assert frozenset({"learnact.evaluation.results", "learnact.evaluation.diagnostics"}) not in \
        mutual_imports(package_copy)
    assert "from .diagnostics import" in results.read_text()
    diagnostics.write_text(diagnostics.read_text() + "\n\ndef _planted():\n    from .results import study_runs\n"
                           "    return study_runs\n")
    assert frozenset({"learnact.evaluation.results", "learnact.evaluation.diagnostics"}) in \
        mutual_imports(package_copy)
