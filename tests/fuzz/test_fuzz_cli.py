"""Fuzz the command line and the run store.

- Random argument lists: exit 0 or 2, never a traceback.
- Random corruptions of a finished study folder, then report / compare /
  predict / resume: exit 0 or 2, never a traceback, never a lost user file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fuzzkit import examples, record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CLI_BOUND_S = 20.0
STORE_BOUND_S = 240.0  # a report on a loaded 2-core machine; the bound catches hangs
NO_PARENT = "/nonexistent-learnact-fuzz/out"


def fuzz_settings(ci_examples: int) -> settings:
    """Fixed seed, no example database, no per-example deadline (the tests bound time themselves)."""
    return settings(derandomize=True, deadline=None, database=None, max_examples=examples(ci_examples),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def call(argv: list[str], cwd: Path) -> tuple[int, str]:
    """``learnact ARGV`` in this process (as the console script runs it): exit code and stderr."""
    from learnact.cli import main

    err = io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(old)
    return code, err.getvalue()


def check_outcome(code: int, err: str, outcome: dict[str, str]) -> None:
    assert code in (0, 2), f"exit {code}: {err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
    outcome["kind"] = "ok" if code == 0 else "error"


_COMMANDS = ["run", "report", "compare", "predict", "list", "init", "bogus", "", "--help", "--version", "-h"]
_OPTIONS = ["--preset", "-p", "--config", "-c", "--engine", "--executor", "-x", "--workers", "-w", "--threads",
            "--group-size", "--force", "-q", "--quiet", "--no-report", "--report", "--pdf", "--reference",
            "--metric", "--csv", "--help", "--bogus", "-z", "--", "--debug", "--connect-timeout", "--scheduler"]
_VALUES = ["paper", "headline", "nope", "0", "-1", "abc", "1e999", "", "   ", "x" * 300, "/nonexistent/file.toml",
           ".", "sequential", "vectorized", "dask", "processes", "local", "activations", "presets", "all", "nan",
           "accuracy", "roc_auc", "baseline_tanh", "study.toml", "a" * 5000]


@fuzz_settings(120)
@given(command=st.sampled_from(_COMMANDS),
       rest=st.lists(st.one_of(st.sampled_from(_OPTIONS), st.sampled_from(_VALUES), st.text(max_size=12)),
                     max_size=6))
def test_random_argument_lists(tmp_path_factory: pytest.TempPathFactory, command: str, rest: list[str]) -> None:
    cwd = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    rest = [a for a in rest if a not in ("--out", "-o")]
    argv = [command, *rest] if command else rest
    if command == "run":  # never train in a fuzz example: every run ends at the missing output parent at the latest
        argv += ["--out", NO_PARENT]
    with record("cli arguments", " ".join(argv)) as outcome:
        start = time.perf_counter()
        code, err = call(argv, cwd)
        check_outcome(code, err, outcome)
        assert time.perf_counter() - start < CLI_BOUND_S


TINY = """
name = "fuzz"
seeds = [1, 2]
[data]
dataset = "breast_cancer"
[backbone]
hidden = [8]
[train]
max_epochs = 3
patience = 2
[[variants]]
name = "fixed_tanh"
kind = "fixed"
activation = "tanh"
[[variants]]
name = "gated"
kind = "gated"
candidates = ["relu", "tanh"]
temperature = 1.0
"""


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished tiny study (2 variants x 2 seeds) and a CSV of the data's feature columns."""
    from learnact.data import load_dataset

    root = tmp_path_factory.mktemp("fuzz-study")
    (root / "study.toml").write_text(TINY)
    code, err = call(["run", str(root / "study.toml"), "--out", str(root / "study"), "-q", "--no-report",
                      "--engine", "sequential"], root)
    assert code == 0, err
    ds = load_dataset("breast_cancer")
    pd.DataFrame(ds.X[:20], columns=list(ds.feature_names)).to_csv(root / "rows.csv", index=False)
    return root / "study", root / "rows.csv"


def _corrupt(folder: Path, rng: random.Random, op: str) -> str:
    """Apply one corruption to a file of ``folder``; returns what was done."""
    runs = sorted(p for p in (folder / "runs").iterdir() if (p / ".learnact-run").is_file())
    run = rng.choice(runs)
    files = sorted(p for p in run.iterdir() if p.is_file())
    target = rng.choice(files + [folder / "study.json"])
    if op == "delete":
        target.unlink()
    elif op == "truncate":
        data = target.read_bytes()
        target.write_bytes(data[: rng.randrange(max(1, len(data)))])
    elif op == "flip":
        data = bytearray(target.read_bytes())
        if data:
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
    elif op == "garbage":
        target.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
    elif op == "json-edit" and target.suffix == ".json":
        try:
            doc = json.loads(target.read_text())
        except ValueError:
            return f"{op} (not JSON) {target.relative_to(folder)}"
        value = rng.choice([57, -1, None, "x", float("nan"), [], {}, 1e308, "../../x"])
        if isinstance(doc, dict) and doc:
            doc[rng.choice(sorted(doc))] = value
        elif isinstance(doc, list) and doc:
            doc[rng.randrange(len(doc))] = value
        target.write_text(json.dumps(doc))
    elif op == "csv-edit" and target.suffix == ".csv":
        frame = pd.read_csv(target).astype(object)
        if len(frame):
            frame.iat[rng.randrange(len(frame)), rng.randrange(frame.shape[1])] = rng.choice(
                [57.0, -3.0, np.nan, np.inf, "text"])
        frame.to_csv(target, index=False)
    elif op == "remove-run":
        shutil.rmtree(run)
        return f"{op} {run.name}"
    return f"{op} {target.relative_to(folder)}"


_OPS = ["delete", "truncate", "flip", "garbage", "json-edit", "csv-edit", "remove-run"]


def _copy_with_user_files(study: Path, into: Path) -> tuple[Path, list[Path]]:
    copy = into / "study"
    shutil.copytree(study, copy)
    user = [copy / "runs" / "my-notes.txt", copy / "runs" / "tensorboard" / "events.out", copy / "notes.md"]
    for path in user:
        path.parent.mkdir(exist_ok=True)
        path.write_text("the user's own file\n")
    return copy, user


def _store_case(tmp_path_factory: pytest.TempPathFactory, finished_study: tuple[Path, Path], seed: int, op: str,
                command: str, loader: str) -> None:
    study, rows = finished_study
    work = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    copy, user = _copy_with_user_files(study, work)
    done = _corrupt(copy, random.Random(seed), op)
    run = next((p for p in sorted((copy / "runs").iterdir()) if (p / ".learnact-run").is_file()), copy / "runs" / "x")
    argv = {"compare": ["compare", str(copy)],
            "predict": ["predict", str(run), str(rows), "--out", str(work / "pred.csv")],
            "report": ["report", str(copy)],
            "resume": ["run", "--out", str(copy), "-q", "--no-report", "--engine", "sequential"]}[command]
    with record(loader, f"{done}; {command}") as outcome:
        start = time.perf_counter()
        code, err = call(argv, work)
        check_outcome(code, err, outcome)
        assert time.perf_counter() - start < STORE_BOUND_S
        for path in user:
            assert path.is_file(), f"{command} after {done} removed the user's file {path}"


@fuzz_settings(60)
@given(seed=st.integers(0, 2**32 - 1), op=st.sampled_from(_OPS), command=st.sampled_from(["compare", "predict"]))
def test_corrupt_study_compare_predict(tmp_path_factory: pytest.TempPathFactory, finished_study: tuple[Path, Path],
                                       seed: int, op: str, command: str) -> None:
    _store_case(tmp_path_factory, finished_study, seed, op, command, "run folder (compare, predict)")


@fuzz_settings(10)
@given(seed=st.integers(0, 2**32 - 1), op=st.sampled_from(_OPS), command=st.sampled_from(["report", "resume"]))
def test_corrupt_study_report_resume(tmp_path_factory: pytest.TempPathFactory, finished_study: tuple[Path, Path],
                                     seed: int, op: str, command: str) -> None:
    _store_case(tmp_path_factory, finished_study, seed, op, command, "run folder (report, resume)")
