"""``learnact run`` and ``report`` never write over what they did not write, and name what is in the way.

Each case once replaced or removed a user's file, or trained the wrong study: a ``study.json`` of the user's
taken for a study folder's, an output folder inside a study's run store, a ``.lock`` of the user's.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from learnact import store
from learnact.experiment import list_presets, load_study
from learnact.experiment.grid import study_to_dict

TINY = textwrap.dedent("""
    name = "tiny"
    seeds = [1, 2]
    reference = "relu"
    [backbone]
    hidden = [4]
    [train]
    max_epochs = 2
    [[variants]]
    name = "relu"
    kind = "fixed"
    activation = "relu"
    [[variants]]
    name = "gated"
    kind = "gated"
    candidates = ["relu", "tanh"]
""")

USER_STUDY = {"name": "mine", "seeds": {"count": 2}, "data": {"dataset": "breast_cancer"}, "train": {"max_epochs": 2},
              "variants": [{"name": "v_{activation}", "kind": "fixed", "activation": ["relu", "tanh"]}]}


def _cli(capsys, *args: str | Path) -> tuple[int, str, str]:
    from learnact.cli.app import app
    from learnact.cli.errors import run_cli

    rc = run_cli(app, [str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _refused(result: tuple[int, str, str], message: str) -> None:
    rc, _, err = result
    assert rc == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished study folder ``tiny`` (4 runs, no report) beside its file ``tiny.toml``."""
    from learnact.cli.app import app
    from learnact.cli.errors import run_cli

    where = tmp_path_factory.mktemp("guards")
    (where / "tiny.toml").write_text(TINY)
    assert run_cli(app, ["run", str(where / "tiny.toml"), "--out", str(where / "tiny"), "--no-report", "-q"]) == 0
    return where / "tiny"


@pytest.fixture()
def study(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished study, with its file ``tiny.toml`` beside it."""
    import shutil

    shutil.copytree(finished, tmp_path / "tiny", symlinks=True)
    shutil.copy(finished.parent / "tiny.toml", tmp_path / "tiny.toml")
    return tmp_path / "tiny"


def test_the_study_json_learnact_writes_is_recognised_and_a_users_is_not(tmp_path):
    for name in list_presets():
        assert store.is_learnact_study(study_to_dict(load_study(name))), name
    (tmp_path / "t.toml").write_text(TINY)
    written = study_to_dict(load_study(tmp_path / "t.toml"))
    assert store.is_learnact_study(json.loads(json.dumps(written)))
    for bad in (USER_STUDY, {"my": "notes"}, [written], {**written, "seeds": [0, True]},
                {**written, "train": {"max_epochs": 2}}, {**written, "notes": "mine"}, {**written, "variants": []}):
        assert not store.is_learnact_study(bad), bad


def test_run_never_writes_over_a_users_study_json(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "study.json").write_text(json.dumps(USER_STUDY))
    monkeypatch.chdir(mine)
    before = _snapshot(mine)
    for args in (["study.json", "--out", "."], ["--config", "study.json", "--out", "."], ["--out", "."]):
        _refused(_cli(capsys, "run", *args, "--no-report", "-q"),
                 "--out '.' is not a study folder (its study.json is not one learnact run wrote) but holds study.json")
    _refused(_cli(capsys, "run", ".", "--no-report", "-q"), "is a folder whose study.json learnact run did not write")
    assert _snapshot(mine) == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "study.json").write_text('{"my": "notes"}')
    (notes / "results.csv").write_text("a,b\n1,2\n")
    (tmp_path / "tiny.toml").write_text(TINY)
    before = _snapshot(notes)
    _refused(_cli(capsys, "run", tmp_path / "tiny.toml", "--out", notes, "--no-report", "-q"),
             "but holds study.json, results.csv, which learnact run would write over")
    assert _snapshot(notes) == before


def test_a_study_folder_resumes_and_its_edited_study_json_is_still_its_own(study, capsys):
    raw = json.loads((study / "study.json").read_text())
    raw["train"]["max_epochs"] = 3  # edited in place: the study file of the folder
    (study / "study.json").write_text(json.dumps(raw))
    rc, out, err = _cli(capsys, "run", "--out", study, "--no-report", "-q")
    assert rc == 0 and "(4 trained, 0 already done)" in out, err


def test_run_and_report_out_inside_a_run_store_are_refused(study, capsys):
    toml = study.parent / "tiny.toml"
    run = store.finished_runs(study)[0]
    before = _snapshot(study)
    for out, inside in ((study / "runs", study / "runs"), (run, run), (study / "superseded", study / "superseded"),
                        (study / "runs" / "new", study / "runs")):
        _refused(_cli(capsys, "run", toml, "--out", out, "--no-report", "-q"),
                 f"--out {str(out)!r} lies in {str(inside.resolve())!r}, part of a study's run store")
        _refused(_cli(capsys, "report", study, "--out", out / "report"),
                 f"report folder {str(out / 'report')!r} lies in {str(inside.resolve())!r}, part of a study's run "
                 f"store")
    assert _snapshot(study) == before and not (study / "superseded").exists()


def test_compare_and_report_refuse_a_corrupt_study_json_and_run_rewrites_it(study, capsys):
    path = study / "study.json"
    for corrupt in ("{", "[1, 2]", "folder"):
        path.unlink() if path.is_file() else path.rmdir()
        if corrupt == "folder":
            path.mkdir()
            message = f"{str(path)!r} is not a file, so not the study's study.json; move it out of"
        else:
            path.write_text(corrupt)
            message = f"corrupt file {str(path)!r} ("
        for command in ("compare", "report"):  # compare had used another reference (the best fixed baseline)
            _refused(_cli(capsys, command, study), message)
            assert not (study / "report").exists()
    path.rmdir()
    path.write_text("{")
    rc, out, err = _cli(capsys, "run", study.parent / "tiny.toml", "--out", study, "--no-report", "-q")
    assert rc == 0 and "(0 trained, 4 already done)" in out, err
    rc, out, err = _cli(capsys, "compare", study)
    assert rc == 0 and "vs relu (the study's reference)" in " ".join(out.split()), out


def test_a_lock_log_or_runs_of_the_wrong_kind_is_named_and_nothing_is_written(study, tmp_path, capsys):
    toml = study.parent / "tiny.toml"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".lock").write_text("my notes\n")
    _refused(_cli(capsys, "run", toml, "--out", mine, "--no-report", "-q"),
             "(it has no study.json) but holds .lock, which learnact run would write over")
    assert [p.name for p in mine.iterdir()] == [".lock"] and (mine / ".lock").read_text() == "my notes\n"
    (study / ".lock").unlink()
    (study / ".lock").write_text("my notes\n")
    _refused(_cli(capsys, "run", "--out", study, "--no-report", "-q"), ".lock' holds what learnact did not write")
    assert (study / ".lock").read_text() == "my notes\n"
    (study / ".lock").unlink()
    before = _snapshot(study)
    for name, kind, what in ((".lock", "a folder", "writes the study's lock file"),
                             ("study.log", "a folder", "appends the study's log")):
        (study / name).rename(study / f"{name}.moved") if (study / name).exists() else None
        (study / name).mkdir()
        _refused(_cli(capsys, "run", "--out", study, "--no-report", "-q"),
                 f"{str(study / name)!r} is {kind}, in the way where learnact {what}; move it out of")
        (study / name).rmdir()
    (study / "study.log.moved").rename(study / "study.log")
    assert _snapshot(study) == before
    users = tmp_path / "users"
    users.mkdir()
    (users / "runs").write_text("my runs\n")
    _refused(_cli(capsys, "run", toml, "--out", users, "--no-report", "-q"),
             f"{str(users / 'runs')!r} is a file, in the way where learnact keeps the study's run folders")
    assert [p.name for p in users.iterdir()] == ["runs"]  # no study.json, no study.log


def test_runs_without_their_study_json_need_the_study_named(study, capsys):
    for name in ("study.json", "results.csv", "leaderboard.csv"):
        (study / name).unlink()
    before = _snapshot(study)
    for study_json, what in ((None, "no study.json"), ("{", "a study.json learnact cannot read")):
        if study_json is not None:
            (study / "study.json").write_text(study_json)
        _refused(_cli(capsys, "run", "--out", study, "--no-report", "-q"),  # had trained the paper preset
                 f"--out {str(study)!r} holds runs learnact wrote but {what}, so their study is unknown; give the "
                 f"study they belong to: `learnact run STUDY_FILE --out {study}`")
        assert not (study / "superseded").exists()
    (study / "study.json").unlink()
    assert _snapshot(study) == before
    rc, out, err = _cli(capsys, "run", study.parent / "tiny.toml", "--out", study, "--no-report", "-q")
    assert rc == 0 and "(0 trained, 4 already done)" in out, err
