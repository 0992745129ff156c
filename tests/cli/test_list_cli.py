"""`learnact list`: candidates, gate kinds, families with their parameters, presets and data sets, from the
registries, through the real console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
import sympy
from sympy.parsing.sympy_parser import convert_xor, implicit_multiplication, parse_expr, standard_transformations

import learnact
from learnact.config import TEMPERATURE_SCHEDULES
from learnact.data import BUILTIN_DATASETS
from learnact.experiment import list_presets
from learnact.model import list_candidates, list_families
from learnact.model.activations import GateKind, family_params_model
from learnact.training.schedules import TemperatureSchedule

SRC = str(Path(learnact.__file__).resolve().parents[1])


def _learnact(*args: str) -> subprocess.CompletedProcess:
    """Run the installed ``learnact`` console script (next to this Python) on this checkout's code."""
    script = Path(sys.executable).with_name("learnact")
    command = [str(script)] if script.is_file() else [shutil.which("learnact") or "learnact"]
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=120)


def _section(out: str, title: str) -> list[str]:
    """The lines of the section whose first line starts with ``title``."""
    blocks = out.strip().split("\n\n")
    block = next(b for b in blocks if b.startswith(title))
    return block.splitlines()[1:]


@pytest.fixture(scope="module")
def listing() -> str:
    proc = _learnact("list")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_list_shows_every_candidate_gate_kind_preset_and_dataset(listing):
    assert _section(listing, "candidates")[0].strip().split(", ") == list_candidates()
    gates = [line.split()[0] for line in _section(listing, "gate kinds")]
    assert gates == list(get_args(GateKind))
    assert _section(listing, "presets")[0].strip().split(", ") == list_presets()
    rows = [line.split() for line in _section(listing, "data sets")]
    assert rows[0][:5] == ["name", "rows", "features", "classes", "task"]
    assert [r[0] for r in rows[1:]] == list(BUILTIN_DATASETS)


@pytest.mark.parametrize("kind", TEMPERATURE_SCHEDULES)
def test_list_shows_every_temperature_schedule_with_the_formula_the_engines_use(listing, kind):
    # The shown formula, parsed by sympy, gives TemperatureSchedule.at's temperature at every epoch.
    shown = dict(line.strip().split(None, 1) for line in _section(listing, "gate temperature schedules"))
    assert list(shown) == list(TEMPERATURE_SCHEDULES)
    t0, t1, p = sympy.symbols("T0 T1 p")
    formula = parse_expr(shown[kind].removeprefix("T = "), local_dict={"T0": t0, "T1": t1, "p": p, "pi": sympy.pi,
                                                                      "cos": sympy.cos},
                         transformations=(*standard_transformations, implicit_multiplication, convert_xor))
    schedule = TemperatureSchedule(kind, 2.0, 0.25, 9)
    for epoch in range(1, 10):
        expected = float(formula.subs({t0: 2.0, t1: 0.25, p: (epoch - 1) / 8}))
        assert schedule.at(epoch) == pytest.approx(expected, rel=1e-12), (kind, epoch)


def test_list_shows_every_family_with_its_parameters_defaults_and_descriptions(listing):
    lines = _section(listing, "learnable families")
    heads = [i for i, line in enumerate(lines) if not line.startswith("    ")]
    assert [lines[i].split(":")[0].strip() for i in heads] == list_families()
    for start, end, name in zip(heads, [*heads[1:], len(lines)], list_families(), strict=True):
        shown = {}
        for line in lines[start + 1:end]:
            key, rest = line.strip().split(" = ", 1)
            shown[key.strip()] = rest
        spec = family_params_model(name)
        assert list(shown) == list(spec.model_fields), name
        for key, field in spec.model_fields.items():
            default = f'"{field.default}"' if isinstance(field.default, str) else (
                f"{field.default:g}" if isinstance(field.default, float) else str(field.default))
            assert shown[key].startswith(default + " "), (name, key, shown[key])
            assert shown[key].endswith(field.description), (name, key)


@pytest.mark.parametrize("what, title, absent", [
    ("families", "learnable families", "candidates"),
    ("schedules", "gate temperature schedules", "learnable families"),
    ("gates", "gate kinds", "learnable families"),
    ("activations", "candidates", "presets"),
])
def test_list_one_section(what, title, absent):
    proc = _learnact("list", what)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(title) and f"\n{absent}" not in proc.stdout
    if what == "activations":  # candidates and families, the two ways to pick an activation
        assert "\nlearnable families" in proc.stdout


def test_list_unknown_section_is_one_line_exit_2():
    proc = _learnact("list", "famillies")
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "unknown list 'famillies'" in err and "families" in err
