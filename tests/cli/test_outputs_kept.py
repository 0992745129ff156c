"""What the commands write is theirs: a user's files in the way are refused, never replaced (the console script).

Each case once ran with exit code 0 and replaced the file: `compare --csv` a run's sealed metrics.json (the
study then failed its manifest check) or the user's study file, `run --out` a folder's own results.csv, `report
--out` a folder's index.html.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from console import run_learnact as _learnact

TINY = textwrap.dedent("""
    name = "tiny"
    seeds = [1, 2]
    reference = "relu"
    [backbone]
    hidden = [8]
    [train]
    max_epochs = 2
    [[variants]]
    name = "relu"
    kind = "fixed"
    activation = "relu"
    [[variants]]
    name = "tanh"
    kind = "fixed"
    activation = "tanh"
""")


def _refused(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-variant study (no report), its folder ``tiny`` beside its file ``tiny.toml``."""
    where = tmp_path_factory.mktemp("kept")
    (where / "tiny.toml").write_text(TINY)
    proc = _learnact("run", "tiny.toml", "--out", "tiny", "--no-report", "-q", cwd=where)
    assert proc.returncode == 0, proc.stderr
    return where / "tiny"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_compare_csv_never_replaces_a_study_file_or_part_of_a_study(study):
    where = study.parent
    before, toml = _snapshot(study), (where / "tiny.toml").read_bytes()
    metrics = next((study / "runs").iterdir()) / "metrics.json"
    for target, message in [(metrics, "is an existing file that does not end in .csv"),
                            (where / "tiny.toml", "is an existing file that does not end in .csv"),
                            (study / "results.csv", "is the study's own results.csv"),
                            (study / "leaderboard.csv", "is the study's own leaderboard.csv"),
                            (study / "runs" / "x.csv", "part of a study's run store"),
                            (where / "no_such" / "c.csv", "does not exist; create it first")]:
        _refused(_learnact("compare", "tiny", "--csv", str(target), cwd=where), message)
    assert _snapshot(study) == before and (where / "tiny.toml").read_bytes() == toml
    for name, times in (("comparison.csv", 2), ("comparison.txt", 1)):  # a .csv written over; a new file of any name
        for _ in range(times):
            proc = _learnact("compare", "tiny", "--csv", name, cwd=where)
            assert proc.returncode == 0, proc.stderr
        assert (where / name).read_text().startswith("metric,variant,reference,")


def test_compare_given_a_study_file_names_the_folder_it_needs(study):
    _refused(_learnact("compare", "tiny.toml", cwd=study.parent), "'tiny.toml' is a study file; compare reads")


def test_run_into_a_folder_holding_its_output_names_is_refused(study):
    where = study.parent
    mine = where / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("my results\n")
    (mine / "notes.txt").write_text("mine\n")
    _refused(_learnact("run", "tiny.toml", "--out", "mine", "-q", "--no-report", cwd=where),
             "--out 'mine' is not a study folder (it has no study.json) but holds results.csv")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "results.csv"]
    assert (mine / "results.csv").read_text() == "my results\n"
    # learnact's own: the study.log of a run interrupted before it wrote study.json, and a report it marked
    (where / "cut").mkdir()
    (where / "cut" / "study.log").write_text("")
    assert _learnact("report", "tiny", "--out", "cut/report", cwd=where).returncode == 0
    proc = _learnact("run", "tiny.toml", "--out", "cut", "-q", "--no-report", cwd=where)
    assert proc.returncode == 0, proc.stderr


def test_run_given_a_study_folder_resumes_it_there(study):
    where = study.parent
    before = sorted(p.name for p in where.iterdir())
    proc = _learnact("run", "tiny", "--no-report", cwd=where)
    assert proc.returncode == 0, proc.stderr
    assert "(0 trained, 4 already done)" in proc.stdout and f"study folder: {'tiny'}" in proc.stdout
    assert sorted(p.name for p in where.iterdir()) == before  # no new folder
    (where / "plain").mkdir(exist_ok=True)
    _refused(_learnact("run", "plain", cwd=where), "config 'plain' is a folder without study.json")


def test_too_many_threads_is_a_usage_error(study):
    _refused(_learnact("run", "tiny.toml", "--out", "many", "--threads", "100000", cwd=study.parent),
             "--threads 100000 is more than learnact takes (at most")
    assert not (study.parent / "many").exists()


def test_report_never_rebuilds_a_folder_it_did_not_write(study):
    where = study.parent
    mine = where / "site"
    mine.mkdir()
    (mine / "index.html").write_text("<p>my site</p>")
    _refused(_learnact("report", "tiny", "--out", "site", cwd=where),
             "report folder 'site' holds index.html, which learnact did not write")
    assert sorted(p.name for p in mine.iterdir()) == ["index.html"]
    assert (mine / "index.html").read_text() == "<p>my site</p>"
    notes = where / "notes"  # a user's folder without a report's names: the report goes in beside them
    notes.mkdir()
    (notes / "README.md").write_text("mine\n")
    proc = _learnact("report", "tiny", "--out", "notes", cwd=where)
    assert proc.returncode == 0, proc.stderr
    assert (notes / "README.md").read_text() == "mine\n" and (notes / "index.html").is_file()
    for _ in range(2):  # a new folder, then that folder again: learnact's own (its marker)
        proc = _learnact("report", "tiny", "--out", "pack", cwd=where)
        assert proc.returncode == 0, proc.stderr
    assert (where / "pack" / "index.html").is_file() and (where / "pack" / ".learnact-report").is_file()
    (where / "pack" / ".learnact-report").unlink()  # a pack an earlier learnact built, before the marker
    proc = _learnact("report", "tiny", "--out", "pack", cwd=where)
    assert proc.returncode == 0, proc.stderr


def test_predict_out_never_replaces_a_study_file(study):
    run = next((study / "runs").iterdir())
    rows = study.parent / "rows.csv"
    from sklearn.datasets import load_breast_cancer

    load_breast_cancer(as_frame=True).frame.drop(columns="target").head(12).to_csv(rows, index=False)
    before = (study / "results.csv").read_bytes()
    _refused(_learnact("predict", str(run), str(rows), "--out", str(study / "results.csv"), cwd=study.parent),
             "is the study's own results.csv")
    assert (study / "results.csv").read_bytes() == before


def test_compare_and_report_of_an_unfinished_study_say_what_is_missing(study, tmp_path):
    # an interrupted study read as a complete one: its tables and comparisons said nothing of the missing runs
    import shutil

    part = tmp_path / "part"
    shutil.copytree(study, part)
    gone = next(p for p in sorted((part / "runs").iterdir()) if p.name.startswith("tanh__s2__"))
    shutil.rmtree(gone)
    note = ("learnact: warning: 1 of the 4 runs 'part' plans have not finished (variants tanh); the statistics use "
            "the finished ones: rerun `learnact run --out part` to finish them")
    for command in (["compare", "part"], ["report", "part"]):
        proc = _learnact(*command, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert note in proc.stderr.splitlines(), proc.stderr
    proc = _learnact("compare", str(study), cwd=tmp_path)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr


def test_runs_moved_back_from_superseded_are_announced_as_those_moved_there(tmp_path):
    # the move out was one line; the move back, after the study file was restored, said nothing
    (tmp_path / "tiny.toml").write_text(TINY)
    assert _learnact("run", "tiny.toml", "--out", "s", "--no-report", "-q", cwd=tmp_path).returncode == 0
    (tmp_path / "tiny.toml").write_text(TINY.split("[[variants]]\nname = \"tanh\"")[0])
    proc = _learnact("run", "tiny.toml", "--out", "s", "--no-report", cwd=tmp_path)
    assert proc.returncode == 0 and "2 finished runs of an earlier study in this folder are not part of this one" \
        in proc.stderr, proc.stderr
    (tmp_path / "tiny.toml").write_text(TINY)
    proc = _learnact("run", "tiny.toml", "--out", "s", "--no-report", cwd=tmp_path)
    assert proc.returncode == 0 and "(0 trained, 4 already done)" in proc.stdout, proc.stderr
    assert "2 finished runs this study plans again were moved back from" in proc.stderr, proc.stderr


def test_an_output_named_by_a_link_is_written_where_the_link_leads(study, tmp_path):
    # the file went through a temporary one and a rename, which replaced the link itself: `--csv /dev/stdout`
    # turned /dev/stdout into a regular file
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(real)
    (tmp_path / "out").symlink_to("/proc/self/fd/1")  # what /dev/stdout is
    proc = _learnact("compare", str(study), "--csv", "link.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "link.csv").is_symlink() and real.read_text().startswith("metric,variant,reference,")
    proc = _learnact("compare", str(study), "--csv", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out").is_symlink() and proc.stdout.startswith("metric,variant,reference,")
    run = next((study / "runs").iterdir())
    rows = tmp_path / "rows.csv"
    from sklearn.datasets import load_breast_cancer

    load_breast_cancer(as_frame=True).frame.drop(columns="target").head(12).to_csv(rows, index=False)
    proc = _learnact("predict", str(run), "rows.csv", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out").is_symlink() and proc.stdout.startswith("prob_")


def test_compare_csv_and_predict_out_never_write_into_a_report_pack(study, tmp_path):
    """compare --csv STUDY/report/tables/comparisons.csv had replaced the report's own table, exit 0."""
    pack = tmp_path / "pack"
    proc = _learnact("report", str(study), "--out", str(pack), cwd=study.parent)
    assert proc.returncode == 0, proc.stderr
    table = pack / "tables" / "comparisons.csv"
    before = table.read_bytes()
    _refused(_learnact("compare", "tiny", "--csv", str(table), cwd=study.parent),
             "a report pack learnact report writes and rebuilds")
    assert table.read_bytes() == before
