"""The run store through the real console script: user files survive, tampered runs are refused (issue 11)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import learnact
from learnact import store

SRC = str(Path(learnact.__file__).resolve().parents[1])

STUDY = {
    "name": "store_cli",
    "seeds": [1, 2],
    "backbone": {"hidden": [4]},
    "train": {"max_epochs": 2, "patience": 2},
    "variants": [
        {"name": "fixed_tanh", "kind": "fixed", "activation": "tanh"},
        {"name": "gated", "kind": "gated", "gate": "layer"},
    ],
}


def _learnact(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "learnact", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A finished study folder made by `learnact run` (4 runs, no report)."""
    root = tmp_path_factory.mktemp("store_cli")
    (root / "study.json").write_text(json.dumps(STUDY))
    proc = _learnact("run", "--config", "study.json", "--out", "s", "--no-report", "-q", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root / "s"


def test_user_files_under_runs_survive_a_rerun_and_half_written_runs_are_redone(study, tmp_path):
    folder = tmp_path / "s"
    shutil.copytree(study, folder, symlinks=True)
    runs = folder / "runs"
    victim = store.finished_runs(folder)[1]
    (victim / "DONE").unlink()  # ours, killed before DONE
    tmp = runs / f".tmp-{victim.name}-99999"  # ours, killed while writing
    tmp.mkdir()
    (tmp / ".learnact-run").write_text(victim.name + "\n")
    (tmp / "config.json").write_text("{")
    # What a user might keep beside the runs: none of it was written by learnact.
    (runs / "notes.md").write_text("# what I tried\n")
    (runs / ".git" / "objects").mkdir(parents=True)
    (runs / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (runs / "tensorboard" / "gated").mkdir(parents=True)
    (runs / "tensorboard" / "gated" / "events.out.tfevents.1").write_bytes(b"\x00tb")
    (runs / "gated__s9__0123456789").mkdir()  # looks like a run id, but carries no marker naming it
    (runs / "gated__s9__0123456789" / "scratch.txt").write_text("mine")
    user = {k: v for k, v in _files(runs).items() if k.split("/")[0] in
            ("notes.md", ".git", "tensorboard", "gated__s9__0123456789")}
    assert len(user) == 4
    proc = _learnact("run", "--out", "s", "--no-report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {k: v for k, v in _files(runs).items() if k in user} == user  # every user file, byte for byte
    assert (runs / ".git" / "objects").is_dir() and not tmp.exists()
    assert "(1 trained, 3 already done)" in proc.stdout
    store.verify_run(victim)  # retrained and sealed
    named = [line for line in proc.stderr.splitlines() if "learnact did not write" in line]
    assert len(named) == 1 and all(n in named[0] for n in (".git", "gated__s9__0123456789", "notes.md",
                                                           "tensorboard"))
    log = (folder / "study.log").read_text()
    assert "removed 2 half-written run folders" in log and "left alone 4 entries under runs/" in log


def _accuracy_57(run: Path) -> None:
    m = json.loads((run / "metrics.json").read_text())
    m["accuracy"] = 57
    (run / "metrics.json").write_text(json.dumps(m))


def test_a_tampered_run_is_refused_by_run_report_and_compare(study, tmp_path):
    folder = tmp_path / "s"
    shutil.copytree(study, folder)
    run = store.finished_runs(folder)[2]
    _accuracy_57(run)
    before = _files(folder / "runs")
    fix = f"rerun `learnact run --out {folder}` to retrain it"
    for args in (["run", "--out", str(folder), "--no-report"], ["report", str(folder)], ["compare", str(folder)]):
        proc = _learnact(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{run / 'metrics.json'} does not match its manifest" in proc.stderr and fix in proc.stderr
    assert _files(folder / "runs") == before  # nothing retrained, nothing removed
    assert not (folder / "report").exists()


def test_deleted_weights_and_truncated_predictions_are_refused(study, tmp_path):
    folder = tmp_path / "s"
    shutil.copytree(study, folder)
    first, second = store.finished_runs(folder)[:2]
    (first / "weights.safetensors").unlink()
    proc = _learnact("run", "--out", str(folder), "--no-report", cwd=tmp_path)
    assert proc.returncode == 2 and f"{first / 'weights.safetensors'} is missing" in proc.stderr, proc.stderr
    shutil.rmtree(first)  # the advice: move the run folder aside (here: away)
    data = (second / "predictions.csv").read_bytes()
    (second / "predictions.csv").write_bytes(data[: len(data) // 2])
    proc = _learnact("compare", str(folder), cwd=tmp_path)
    assert proc.returncode == 2 and f"{second / 'predictions.csv'} does not match its manifest" in proc.stderr


def _in_process(capsys, *args: str) -> tuple[int, str, str]:
    from learnact.cli.app import app
    from learnact.cli.errors import run_cli

    rc = run_cli(app, list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_full_disk_while_writing_the_leaderboard_is_one_line_and_a_rerun_completes(study, tmp_path, capsys,
                                                                                     monkeypatch):
    import errno

    import pandas as pd

    folder = tmp_path / "s"
    shutil.copytree(study, folder)
    before = (folder / "leaderboard.csv").read_bytes()
    real = pd.DataFrame.to_csv

    def full_disk(self, path=None, *args, **kwargs):
        if path is not None and "leaderboard" in str(path):
            real(self.head(1), path, *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    rc, _, err = _in_process(capsys, "run", "--out", str(folder), "--no-report", "-q")
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "leaderboard.csv" in err and "No space left on device" in err and "rerun the same command" in err
    assert [p.name for p in folder.rglob("*") if ".tmp" in p.name] == []
    assert (folder / "leaderboard.csv").read_bytes() == before  # the old one, whole
    monkeypatch.undo()
    rc, out, err = _in_process(capsys, "run", "--out", str(folder), "--no-report", "-q")
    assert rc == 0 and "(0 trained, 4 already done)" in out, err


def test_out_naming_a_file_and_a_users_done_folder(study, tmp_path, capsys):
    (tmp_path / "a-file").write_text("mine")
    rc, _, err = _in_process(capsys, "run", "--config", str(study / "study.json"), "--out", str(tmp_path / "a-file"))
    assert rc == 2 and "is a file" in err and err.count("\n") == 1
    assert (tmp_path / "a-file").read_text() == "mine"

    folder = tmp_path / "s"
    shutil.copytree(study, folder)
    (folder / "runs" / "my-analysis").mkdir()
    (folder / "runs" / "my-analysis" / "DONE").write_text("my own checklist")  # not a run: readers skip it
    rc, out, err = _in_process(capsys, "compare", str(folder))
    assert rc == 0 and "gated" in out, err
    assert store.foreign_entries(folder) == ["my-analysis"]


@pytest.mark.parametrize("how", ["copied", "linked"])
def test_a_run_folder_holding_another_runs_files_is_corrupt_to_run_report_and_compare(study, tmp_path, capsys, how):
    folder = tmp_path / "s"
    shutil.copytree(study, folder)
    runs = {(cfg.variant, cfg.seed): path for path, cfg in store.study_runs(folder)}
    victim, other = runs[("gated", 1)], runs[("gated", 2)]
    shutil.rmtree(victim)
    if how == "copied":
        shutil.copytree(other, victim)
    else:
        victim.symlink_to(other.name)
    before = _files(folder / "runs")
    for args in (["run", "--out", str(folder), "--no-report", "-q"], ["report", str(folder)],
                 ["compare", str(folder)]):
        rc, out, err = _in_process(capsys, *args)
        assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, (args, out, err)
        assert f"{victim / 'MANIFEST.json'} names run {other.name!r}, not {victim.name!r}" in err, err
        assert "the run folder is corrupt" in err and f"retrain {victim.name!r}" in err
    assert _files(folder / "runs") == before and not (folder / "report").exists()
    with pytest.raises(store.RunStoreError, match="names run"):
        store.verify_run(victim)
    store.verify_run(other)


def test_force_and_a_redone_run_never_remove_a_users_files_kept_in_a_run_folder(study, tmp_path, capsys):
    folder = tmp_path / "s"
    shutil.copytree(study, folder)
    first, second = store.finished_runs(folder)[:2]
    (first / "notes.txt").write_text("seed 1 looked odd\n")
    before = _files(folder / "runs"), (folder / "study.json").read_bytes()
    rc, _, err = _in_process(capsys, "run", "--out", str(folder), "--force", "--no-report", "-q")
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"run folder {str(first)!r} holds notes.txt, which learnact did not write, and --force" in err
    assert (_files(folder / "runs"), (folder / "study.json").read_bytes()) == before  # nothing retrained or removed
    (first / "notes.txt").rename(folder / "notes.txt")  # the advice
    rc, out, err = _in_process(capsys, "run", "--out", str(folder), "--force", "--no-report", "-q")
    assert rc == 0 and "(4 trained, 0 already done)" in out, err
    # a half-written run (killed before DONE) is redone, but not over the user's file in it
    (second / "DONE").unlink()
    (second / "plot.png").write_bytes(b"\x89PNG")
    rc, _, err = _in_process(capsys, "run", "--out", str(folder), "--no-report", "-q")
    assert rc == 2 and f"run folder {str(second)!r} holds plot.png" in err, err
    assert (second / "plot.png").read_bytes() == b"\x89PNG" and (second / "config.json").is_file()
    assert store.clean_partial(folder) == 0 and second.is_dir()


def test_a_users_folder_named_like_a_run_with_a_done_file_is_left_in_place(study, tmp_path, capsys):
    folder = tmp_path / "s"
    shutil.copytree(study, folder)
    mine = folder / "runs" / "zz__s0__0123456789"
    mine.mkdir()
    (mine / "DONE").write_text("mine\n")
    rc, out, err = _in_process(capsys, "run", "--out", str(folder), "--no-report")
    assert rc == 0 and "(0 trained, 4 already done)" in out, err
    assert (mine / "DONE").read_text() == "mine\n" and not (folder / "superseded").exists()
    assert "finished runs of an earlier study" not in err and "zz__s0__0123456789" in err  # listed as the user's
    assert store.foreign_entries(folder) == ["zz__s0__0123456789"] and mine not in store.finished_runs(folder)
    rc, out, err = _in_process(capsys, "compare", str(folder))
    assert rc == 0 and "gated" in out, err
