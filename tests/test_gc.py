"""The collector around the command line's big imports (learnact._gc.loading): none inside, the loaded frozen after."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap

import pytest

from console import SRC
from learnact._gc import loading, paused


@pytest.fixture
def restored_collector():
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def _collections(block) -> list[int]:
    seen: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    try:
        block()
    finally:
        gc.callbacks.remove(count)
    return seen


def _allocate_like_an_import() -> list:
    # far more surviving container objects than the young generation's threshold: collections would run
    return [[i] for i in range(50 * gc.get_threshold()[0])]


def test_no_collection_runs_inside_and_what_is_held_is_frozen_after(restored_collector):
    gc.enable()
    assert _collections(_allocate_like_an_import)  # the baseline: such growth sets off collections

    kept: list = []

    def inside() -> None:
        with loading():
            kept.append(_allocate_like_an_import())

    assert _collections(inside) == []
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept[0])  # the loaded objects: out of every later collection


def test_paused_runs_no_collection_and_freezes_nothing(restored_collector):
    gc.enable()
    gc.unfreeze()

    def inside() -> None:
        with paused():
            _allocate_like_an_import()

    assert _collections(inside) == []
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_disabled_collector_stays_disabled(restored_collector):
    gc.disable()
    with loading():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_turns_the_collector_back_on(restored_collector):
    gc.enable()
    with pytest.raises(KeyError), loading():
        raise KeyError("an import failed")
    assert gc.isenabled()


_RUN_AND_WATCH = textwrap.dedent("""
    import gc, json, sys, traceback
    from pathlib import Path
    during_torch = []
    def watch(phase, info):
        if phase == "start" and any(f.filename.endswith("torch/__init__.py") for f in traceback.extract_stack()):
            during_torch.append(info["generation"])
    gc.callbacks.append(watch)
    import atexit
    out = Path(sys.argv[1])
    atexit.register(lambda: out.write_text(json.dumps(during_torch)))
    sys.argv = ["learnact", "run", sys.argv[2], "--out", sys.argv[3], "--no-report", "--quiet"]
    from learnact.cli import console
    console()
""")


def test_learnact_run_imports_torch_with_no_collection_walking_it(tmp_path):
    # each full collection while torch loaded walked everything loaded so far (0.2-0.3 s before the leaderboard)
    study = tmp_path / "tiny.toml"
    study.write_text(textwrap.dedent("""
        name = "tiny"
        seeds = [1]
        [backbone]
        hidden = [4]
        [train]
        max_epochs = 1
        [[variants]]
        name = "relu"
        kind = "fixed"
        activation = "relu"
    """))
    seen = tmp_path / "collections.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-c", _RUN_AND_WATCH, str(seen), str(study), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(seen.read_text()) == []
