"""The run store: atomic replacement, cleaning half-written folders, superseded runs (issue 4)."""

from __future__ import annotations

import pytest

from learnact import store
from learnact.experiment.executors import run_group


@pytest.fixture()
def artifacts(tiny_study):
    return run_group("sequential", tiny_study.runs()[:2])


def test_write_run_is_complete_and_replaces_in_one_step(tmp_path, artifacts):
    art = artifacts[0]
    folder = store.write_run(tmp_path, art)
    assert store.is_done(tmp_path, art.run)
    assert {p.name for p in folder.iterdir()} >= {"config.json", "metrics.json", "history.jsonl", "DONE",
                                                  "weights.safetensors", "predictions.csv", "gates.json"}
    first = (folder / "DONE").stat().st_ino
    store.write_run(tmp_path, art)  # --force rewrites: no .tmp- or .old- folder is left behind
    assert (folder / "DONE").stat().st_ino != first
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [folder.name]
    assert store.read_run_config(folder) == art.run


def test_clean_partial_removes_temporary_replaced_and_unfinished_folders(tmp_path, artifacts):
    done = store.write_run(tmp_path, artifacts[0])
    unfinished = store.write_run(tmp_path, artifacts[1])
    (unfinished / "DONE").unlink()
    runs = tmp_path / "runs"
    (runs / f".tmp-{done.name}-123").mkdir()
    (runs / f".old-{done.name}-123").mkdir()
    (runs / f".old-{done.name}-123" / "DONE").write_text("")
    (runs / ".tmp-study.json-5").write_text("{")
    assert store.clean_partial(tmp_path) == 4
    assert [p.name for p in runs.iterdir()] == [done.name]
    assert store.finished_runs(tmp_path) == [done]


def test_retire_and_restore_runs(tmp_path, artifacts):
    a, b = (store.write_run(tmp_path, art) for art in artifacts)
    assert store.retire_runs(tmp_path, keep={a.name}) == [b.name]
    assert store.finished_runs(tmp_path) == [a]
    assert (tmp_path / "superseded" / b.name / "DONE").is_file()
    assert store.restore_runs(tmp_path, wanted={b.name}) == [b.name]
    assert store.finished_runs(tmp_path) == [a, b]
    assert store.restore_runs(tmp_path, wanted={b.name}) == []


def test_write_json_atomic(tmp_path):
    store.write_json_atomic(tmp_path / "x.json", {"a": 1})
    store.write_json_atomic(tmp_path / "x.json", {"a": 2})
    assert (tmp_path / "x.json").read_text().strip() == '{\n "a": 2\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
