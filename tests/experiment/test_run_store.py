"""The run store: atomic replacement, cleaning only what it wrote, superseded runs, manifests, checked values."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from learnact import store
from learnact.exceptions import CheckpointError, RunStoreError
from learnact.experiment.executors import run_group


@pytest.fixture()
def artifacts(tiny_study):
    return run_group("sequential", tiny_study.runs()[:2])


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), not following symlinks."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def test_write_run_is_complete_and_replaces_in_one_step(tmp_path, artifacts):
    art = artifacts[0]
    folder = store.write_run(tmp_path, art)
    assert store.is_done(tmp_path, art.run)
    assert {p.name for p in folder.iterdir()} == {".learnact-run", "config.json", "metrics.json", "history.jsonl",
                                                  "DONE", "MANIFEST.json", "weights.safetensors", "predictions.csv",
                                                  "gates.json", "preprocessing.json"}
    first = (folder / "DONE").stat().st_ino
    store.write_run(tmp_path, art)  # --force rewrites: no .tmp- or .old- folder is left behind
    assert (folder / "DONE").stat().st_ino != first
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [folder.name]
    assert store.read_run_config(folder) == art.run


def test_every_run_id_has_the_form_the_store_recognises(tiny_study):
    # clean_partial proves a folder is its own by its name; a new run-id format must update RUN_ID_PATTERN.
    assert all(store.is_run_id(r.run_id) for r in tiny_study.runs())
    assert not any(store.is_run_id(n) for n in ("notes", ".git", "tb__s1__xyz", "a__s1__0123456789x", "a__b"))


def test_manifest_seals_every_file_with_its_sha256(tmp_path, artifacts):
    folder = store.write_run(tmp_path, artifacts[0])
    raw = (folder / "MANIFEST.json").read_bytes()
    assert (folder / "DONE").read_text().strip() == hashlib.sha256(raw).hexdigest()
    manifest = json.loads(raw)
    assert manifest["format"] == "learnact-run/2" and manifest["run_id"] == folder.name
    on_disk = {p.name for p in folder.iterdir()} - {"MANIFEST.json", "DONE"}
    assert set(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert (folder / ".learnact-run").read_text() == folder.name + "\n"
    store.verify_run(folder)


def test_clean_partial_removes_only_what_the_store_wrote(tmp_path, artifacts):
    done = store.write_run(tmp_path, artifacts[0])
    unfinished = store.write_run(tmp_path, artifacts[1])
    (unfinished / "DONE").unlink()  # ours (marker names it) but never finished
    runs = tmp_path / "runs"
    (runs / f".tmp-{done.name}-123").mkdir()  # killed while writing
    (runs / f".old-{done.name}-123").mkdir()  # killed after the replacement was in place
    (runs / f".old-{done.name}-123" / "DONE").write_text("")
    # Entries learnact never wrote: all must survive, byte for byte.
    (runs / "notes.txt").write_text("my notes")
    (runs / ".git").mkdir()
    (runs / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (runs / "tensorboard" / "run1").mkdir(parents=True)
    (runs / "tensorboard" / "run1" / "events.out").write_bytes(b"\x00\x01")
    (runs / "lookalike__s1__0123456789").mkdir()  # a run id's shape, but no marker naming it
    (runs / "lookalike__s1__0123456789" / "keep.txt").write_text("mine")
    (runs / ".tmp-study.json-5").write_text("{")  # not a run id: not a temporary name of runs/
    (runs / ".tmp-notes-12").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious.txt").write_text("x")
    (runs / f"{done.name[:-10]}ffffffffff").symlink_to(outside)  # a link with a run id's name
    before = _tree(runs)
    assert store.clean_partial(tmp_path) == 3
    foreign = [".git", ".tmp-notes-12", ".tmp-study.json-5", f"{done.name[:-10]}ffffffffff",
               "lookalike__s1__0123456789", "notes.txt", "tensorboard"]
    assert sorted(p.name for p in runs.iterdir()) == sorted([done.name, *foreign])
    assert store.foreign_entries(tmp_path) == sorted(foreign)
    after = _tree(runs)
    removed = (f"{unfinished.name}/", f".old-{done.name}-123/")
    assert {k: v for k, v in before.items() if not k.startswith(removed)} == after
    assert (outside / "precious.txt").read_text() == "x"
    assert store.finished_runs(tmp_path) == [done]


def test_an_old_folder_whose_replacement_never_arrived_is_moved_back(tmp_path, artifacts):
    # killed between "move the finished run aside" and "move the new one in": .old- holds the only copy
    folder = store.write_run(tmp_path, artifacts[0])
    expected = _tree(folder)
    os.replace(folder, folder.parent / f".old-{folder.name}-4242")
    assert store.clean_partial(tmp_path) == 1
    assert _tree(folder) == expected
    store.verify_run(folder)


def test_clean_partial_removes_the_study_folders_own_temporary_files(tmp_path):
    for name in (".tmp-study.json-5", ".tmp-results.csv-6", ".results.csv.tmp-7", ".tmp-leaderboard.csv-8"):
        (tmp_path / name).write_text("half")
    (tmp_path / ".tmp-mine.txt-5").write_text("user file")
    (tmp_path / "study.json").write_text("{}")
    assert store.clean_partial(tmp_path) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-mine.txt-5", "study.json"]


def test_retire_and_restore_runs(tmp_path, artifacts):
    a, b = (store.write_run(tmp_path, art) for art in artifacts)
    assert store.retire_runs(tmp_path, keep={a.name}) == [b.name]
    assert store.finished_runs(tmp_path) == [a]
    assert (tmp_path / "superseded" / b.name / "DONE").is_file()
    assert store.restore_runs(tmp_path, wanted={b.name}) == [b.name]
    assert store.finished_runs(tmp_path) == [a, b]
    assert store.restore_runs(tmp_path, wanted={b.name}) == []


def test_a_superseded_collision_keeps_both_finished_runs(tmp_path, artifacts):
    first = store.write_run(tmp_path, artifacts[0])
    first_files = _tree(first)
    assert store.retire_runs(tmp_path, keep=set()) == [first.name]
    second = store.write_run(tmp_path, artifacts[0])  # the same run trained again, then superseded again
    (second / "extra-marker-for-the-test").write_text("2")  # tell the copies apart (not in the manifest)
    assert store.retire_runs(tmp_path, keep=set()) == [second.name]
    sup = tmp_path / "superseded"
    assert sorted(p.name for p in sup.iterdir()) == [first.name, f"{first.name}~2"]
    assert _tree(sup / first.name) == first_files
    for copy in sup.iterdir():
        store.verify_run(copy)
    assert store.restore_runs(tmp_path, wanted={first.name}) == [first.name]
    assert _tree(first) == first_files and (sup / f"{first.name}~2").is_dir()


def test_retire_moves_only_run_folders(tmp_path, artifacts):
    store.write_run(tmp_path, artifacts[0])
    user = tmp_path / "runs" / "my-analysis"
    user.mkdir()
    (user / "DONE").write_text("my own todo list")
    assert store.retire_runs(tmp_path, keep=set()) == [artifacts[0].run.run_id]
    assert (user / "DONE").read_text() == "my own todo list"


def _edit_metrics(folder: Path) -> None:
    m = json.loads((folder / "metrics.json").read_text())
    m["accuracy"] = 57
    (folder / "metrics.json").write_text(json.dumps(m))


@pytest.mark.parametrize("tamper, reader, message", [
    (_edit_metrics, store.read_metrics, "metrics.json does not match its manifest"),
    (lambda f: (f / "predictions.csv").write_bytes((f / "predictions.csv").read_bytes()[:-200]),
     store.read_predictions, "predictions.csv does not match its manifest"),
    (lambda f: (f / "weights.safetensors").unlink(), store.read_metrics, "weights.safetensors is missing"),
    (lambda f: (f / "history.jsonl").write_text("{}\n"), store.read_history, "history.jsonl does not match"),
    (lambda f: (f / "MANIFEST.json").write_text((f / "MANIFEST.json").read_text().replace('"size": 1', '"size": 2')),
     store.read_gates, "MANIFEST.json does not match the hash in DONE"),
    (lambda f: (f / "MANIFEST.json").unlink(), store.read_run_config, "MANIFEST.json is missing"),
])
def test_a_tampered_run_is_refused_naming_the_file_and_the_fix(tmp_path, artifacts, tamper, reader, message):
    folder = store.write_run(tmp_path, artifacts[0])
    tamper(folder)
    for read in (reader, store.verify_run):
        with pytest.raises(RunStoreError, match=message) as info:
            read(folder)
        text = str(info.value)
        assert str(folder) in text and f"learnact run --out {tmp_path}" in text and "\n" not in text


def test_flipped_weight_byte_is_refused(tmp_path, artifacts):
    folder = store.write_run(tmp_path, artifacts[0])
    data = bytearray((folder / "weights.safetensors").read_bytes())
    data[-3] ^= 0x01
    (folder / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="weights.safetensors does not match its manifest"):
        store.load_state(folder)


def test_a_format_1_run_is_refused_with_how_to_retrain_it(tmp_path, artifacts):
    folder = store.write_run(tmp_path, artifacts[0])
    (folder / "MANIFEST.json").unlink()
    (folder / ".learnact-run").unlink()
    (folder / "DONE").write_text("")  # exactly what learnact 0.1 wrote
    with pytest.raises(RunStoreError, match=r"learnact 0\.1 \(run format 1\).*--force"):
        store.read_metrics(folder)
    store.write_run(tmp_path, artifacts[0])  # --force may replace it: a format-1 run is learnact's own
    store.verify_run(folder)


def test_the_manifest_cache_notices_a_reseal(tmp_path, artifacts, reseal):
    folder = store.write_run(tmp_path, artifacts[0])
    assert store.read_metrics(folder)["accuracy"] <= 1  # caches the verified manifest
    _edit_metrics(folder)
    with pytest.raises(RunStoreError, match="does not match its manifest"):
        store.read_metrics(folder)
    reseal(folder)  # now the manifest agrees: the value check must refuse it
    with pytest.raises(RunStoreError, match=r"accuracy = 57 is outside \[0, 1\]"):
        store.read_metrics(folder)


def _set_json(folder: Path, name: str, edit) -> None:
    doc = json.loads((folder / name).read_text())
    edit(doc)
    (folder / name).write_text(json.dumps(doc))


def _set_prob(folder: Path, value: float) -> None:
    pred = pd.read_csv(folder / "predictions.csv")
    col = "prob" if "prob" in pred else "prob_0"
    pred.loc[3, col] = value
    pred.to_csv(folder / "predictions.csv", index=False)


@pytest.mark.parametrize("edit, reader, message", [
    (lambda f: _set_json(f, "metrics.json", lambda m: m.update(roc_auc=-0.1)), store.read_metrics,
     r"roc_auc = -0.1 is outside \[0, 1\]"),
    (lambda f: _set_json(f, "metrics.json", lambda m: m.update(f1="high")), store.read_metrics,
     "f1 'high' is not a number"),
    (lambda f: _set_prob(f, 1.5), store.read_predictions, r"column 'prob' holds 1.5 \(row 4\)"),
    (lambda f: _set_prob(f, float("nan")), store.read_predictions, "column 'prob' holds nan"),
    (lambda f: (f / "history.jsonl").write_text('{"epoch": 1}\n[1, 2]\n'), store.read_history,
     "line 2 is not a JSON object"),
    (lambda f: _set_json(f, "preprocessing.json", lambda p: p.update(class_names=["only_one"])),
     store.read_preprocessing, r"1 class names \['only_one'\] for n_classes = 2"),
])
def test_values_are_checked_on_read(tmp_path, artifacts, reseal, edit, reader, message):
    folder = store.write_run(tmp_path, artifacts[0])
    edit(folder)
    reseal(folder)
    with pytest.raises(RunStoreError, match=message):
        reader(folder)


def test_a_diverged_run_may_hold_nan_probabilities(tmp_path, artifacts, reseal):
    folder = store.write_run(tmp_path, artifacts[0])
    _set_prob(folder, float("nan"))
    _set_json(folder, "metrics.json", lambda m: m.update(
        status="diverged", diverged_epoch=2, diverged_reason="loss is nan", accuracy=float("nan")))
    reseal(folder)
    metrics = store.read_metrics(folder)
    assert metrics["status"] == "diverged" and math.isnan(metrics["accuracy"])
    assert np.isnan(store.read_predictions(folder)["prob"].iloc[3])


def test_write_json_atomic(tmp_path):
    store.write_json_atomic(tmp_path / "x.json", {"a": 1})
    store.write_json_atomic(tmp_path / "x.json", {"a": 2})
    assert (tmp_path / "x.json").read_text().strip() == '{\n "a": 2\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


# ---------------------------------------------------------------- a full disk


def _full_disk_after(monkeypatch, n_ok: int, method: str = "write_bytes"):
    """Patch ``Path.<method>`` so that the write after the first ``n_ok`` writes half a file, then fails."""
    real = getattr(Path, method)
    calls = []

    def write(self, data, *args, **kwargs):
        calls.append(self.name)
        if len(calls) > n_ok:
            real(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, method, write)
    return calls


def _temporaries(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name or p.name.startswith(".old-")]


def test_a_full_disk_while_writing_a_run_leaves_nothing_behind(tmp_path, artifacts, monkeypatch):
    calls = _full_disk_after(monkeypatch, 4)
    with pytest.raises(RunStoreError, match=r"No space left on device \(ENOSPC\).*rerun the same command") as info:
        store.write_run(tmp_path, artifacts[0])
    assert "\n" not in str(info.value) and len(calls) == 5
    assert _temporaries(tmp_path) == [] and list((tmp_path / "runs").iterdir()) == []
    monkeypatch.undo()
    store.verify_run(store.write_run(tmp_path, artifacts[0]))


def test_a_full_disk_while_replacing_a_run_keeps_the_finished_one(tmp_path, artifacts, monkeypatch):
    folder = store.write_run(tmp_path, artifacts[0])
    before = _tree(folder)
    _full_disk_after(monkeypatch, 7)
    with pytest.raises(RunStoreError, match="No space left"):
        store.write_run(tmp_path, artifacts[0])
    assert _temporaries(tmp_path) == [] and _tree(folder) == before


def test_a_full_disk_while_writing_json_leaves_no_temporary_file(tmp_path, monkeypatch):
    store.write_json_atomic(tmp_path / "study.json", {"a": 1})
    _full_disk_after(monkeypatch, 0, "write_text")
    with pytest.raises(RunStoreError, match="No space left"):
        store.write_json_atomic(tmp_path / "study.json", {"a": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["study.json"]
    assert json.loads((tmp_path / "study.json").read_text()) == {"a": 1}


def test_a_full_disk_mid_study_and_while_writing_results_then_a_resume_completes(tmp_path, tiny_study, monkeypatch):
    from learnact.evaluation import load_results, write_results
    from learnact.experiment import run_study

    folder = tmp_path / "study"
    calls = _full_disk_after(monkeypatch, 2 * 9 + 3)  # 9 files a run: the third run fails half-way
    with pytest.raises(RunStoreError, match="No space left"):
        run_study(tiny_study, folder)
    assert len(store.finished_runs(folder)) == 2 and len(calls) == 2 * 9 + 4
    assert _temporaries(folder) == []
    monkeypatch.undo()
    result = run_study(tiny_study, folder)  # the resume
    assert result.n_skipped == 2 and result.n_trained == 2
    for run in store.finished_runs(folder):
        store.verify_run(run)

    real_to_csv = pd.DataFrame.to_csv

    def full(self, path=None, *args, **kwargs):
        real_to_csv(self.head(3), path, *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(RunStoreError, match=r"results\.csv.*No space left"):
        write_results(folder)
    assert _temporaries(folder) == [] and not (folder / "results.csv").exists()
    monkeypatch.undo()
    write_results(folder)
    assert load_results(folder)["run_id"].nunique() == 4
