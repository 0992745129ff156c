"""`learnact run`: kill -9 and resume, the folder lock, config errors, progress and output (issue 4)."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from learnact import store
from learnact.cli.app import app
from learnact.cli.errors import run_cli
from learnact.cli.progress import format_duration, study_progress
from learnact.cli.run_cmd import _study_source
from learnact.evaluation import per_run, tidy_results
from learnact.evaluation.quantities import MACHINE_QUANTITIES
from learnact.experiment.grid import study_from_dict
from learnact.experiment.runner import run_study
from subprocesses import run_case, wait_until

CLI = [sys.executable, "-m", "learnact"]


def _table(folder: Path) -> pd.DataFrame:
    """Per-run metrics without the machine-dependent columns, in a fixed order."""
    table = per_run(tidy_results(folder)).drop(columns=list(MACHINE_QUANTITIES))
    return table.sort_values("run_id").reset_index(drop=True)


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Identity of every DONE marker: a rewritten run gets a new one."""
    return {p.name: ((p / "DONE").stat().st_ino, (p / "DONE").stat().st_mtime_ns)
            for p in store.finished_runs(folder)}


def _last_session_trained(folder: Path) -> list[str]:
    """Run ids the last session in study.log trained."""
    lines = (folder / "study.log").read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if "session start" in line)
    return [line.split(" INFO trained ")[1].split()[0] for line in lines[start:] if " INFO trained " in line]


# 4 variants x 6 seeds = 24 short runs: long enough to be killed in the middle
KILL_STUDY = {
    "name": "killme",
    "seeds": {"count": 6, "base": 0},
    "backbone": {"hidden": [8]},
    "train": {"max_epochs": 6, "patience": 6},
    "variants": [
        {"name": "fixed_{activation}", "kind": "fixed", "activation": ["relu", "tanh"]},
        {"name": "gated_T{temperature}", "temperature": [0.5, 1.0]},
    ],
}



def test_kill_9_then_rerun_resumes_without_retraining_finished_runs(tmp_path):
    config = tmp_path / "kill.json"
    config.write_text(json.dumps(KILL_STUDY))
    folder = tmp_path / "study"
    total = len(study_from_dict(KILL_STUDY).runs())
    command = [*CLI, "run", "--config", str(config), "--out", str(folder), "--quiet", "--no-report"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(store.finished_runs(folder)) >= 3, "3 runs finished", proc, limit_s=180)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    finished = _stamps(folder)
    assert 3 <= len(finished) < total, "the study must be killed in the middle"
    assert "session end" not in (folder / "study.log").read_text()

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    trained = _last_session_trained(folder)
    assert len(trained) == total - len(finished)
    assert not set(trained) & set(finished), "a run that had a DONE marker was trained again"
    after = _stamps(folder)
    assert {rid: after[rid] for rid in finished} == finished  # DONE markers untouched
    assert len(after) == total
    assert not [p for p in (folder / "runs").iterdir() if p.name.startswith(".")]

    reference = tmp_path / "uninterrupted"
    run_study(study_from_dict(KILL_STUDY), reference)
    pd.testing.assert_frame_equal(_table(folder), _table(reference))


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from learnact.experiment import load_study, run_study

    folder, config, started, gate = (Path(a) for a in sys.argv[1:5])

    def progress(done, total, run_id):
        if run_id and not started.exists():  # hold the study open after its first run
            started.write_text("")
            deadline = time.monotonic() + 300
            while not gate.exists() and time.monotonic() < deadline:
                time.sleep(0.01)

    result = run_study(load_study(config), folder, progress=progress)
    print(result.n_trained)
""")


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_a_second_process_on_the_same_folder_stops_and_the_first_finishes_intact(tmp_path):
    config = tmp_path / "tiny.json"
    study = {**KILL_STUDY, "seeds": [1, 2]}
    config.write_text(json.dumps(study))
    folder, started, gate = tmp_path / "study", tmp_path / "started", tmp_path / "gate"
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(config), str(started), str(gate)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(started.exists, "the first process holds the study", first, limit_s=180)
        before = _snapshot(folder)
        second = subprocess.run([*CLI, "run", "--config", str(config), "--out", str(folder)],
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert second.stderr.startswith(
            f"learnact: error: study folder {str(folder)!r} is in use by another learnact process (pid {first.pid} on ")
        assert "wait for it to finish, or pass another --out folder" in second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert _snapshot(folder) == before  # the second process wrote nothing
        assert first.poll() is None
    finally:
        gate.write_text("")
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    n_runs = len(study_from_dict(study).runs())
    assert out.strip() == str(n_runs)
    assert len(store.finished_runs(folder)) == n_runs
    log = (folder / "study.log").read_text()
    assert log.count("session start") == 1 and log.count("session end: trained 8 runs") == 1


GOOD = """
name = "tiny"
seeds = [1, 2]
[backbone]
hidden = [8]
[train]
max_epochs = 3
[[variants]]
name = "v{temperature}"
kind = "gated"
temperature = 1.0
"""


def _bad(tmp_path, old: str, new: str, suffix: str = ".toml") -> Path:
    assert old in GOOD
    path = tmp_path / f"bad{suffix}"
    path.write_text(textwrap.dedent(GOOD.replace(old, new)))
    return path


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ('name = "tiny"', 'nmae = "tiny"', "nmae: unknown key (did you mean 'name'?)"),
        ("[train]", "[train]\npatiense = 3", "train.patiense: unknown key (did you mean 'patience'?)"),
        ("[backbone]", "[backbone]\nhiden = 3", "backbone.hiden: unknown key (did you mean 'hidden'?)"),
        ("[backbone]", "[data]\ntest_szie = 0.3\n[backbone]",
         "data.test_szie: unknown key (did you mean 'test_size'?)"),
        ("temperature = 1.0", "temprature = 1.0", "variants[0].temprature: unknown key (did you mean 'temperature'?)"),
        ("max_epochs = 3", 'max_epochs = "3"', "train.max_epochs: expected an integer, got '3' (str)"),
        ("temperature = 1.0", "temperature = 0.0", "variants[0].temperature: must be > 0, got 0.0"),
        ("temperature = 1.0", "temperature = [1.0, -0.5]", "variants[0].temperature[1]: must be > 0, got -0.5"),
        ("max_epochs = 3", "max_epochs = 3\npatience = 0", "train.patience: must be >= 1, got 0"),
        ("[backbone]", "[data]\ntest_size = 1.0\n[backbone]", "data.test_size: must be in (0, 1), got 1.0"),
        ("hidden = [8]", "hidden = [8, 0]", "backbone.hidden: every width must be >= 1, got [8, 0]"),
        ('kind = "gated"', 'kind = "gated"\ncandidates = []',
         "variants[0].candidates: must name at least one activation"),
        ('kind = "gated"', 'kind = "gated"\ncandidates = ["relu", "tahn"]',
         "variants[0].candidates[1]: unknown activation 'tahn' (did you mean 'tanh'?); valid: elu, gelu, identity"),
        ("[backbone]", '[data]\ndataset = "data.txt"\n[backbone]',
         "data.dataset: unknown dataset 'data.txt'; use one of breast_cancer, circles,"),
        ("[backbone]", '[data]\ndataset = "missing.csv"\n[backbone]',
         "data.dataset: CSV file 'missing.csv' does not exist"),
        ("seeds = [1, 2]", "seeds = {count = 0}", "seeds: as a table must be {count = N, base = B}"),
        ("[[variants]]", "x = 1\n[[variants]]", "train.x: unknown key; valid keys: lr, weight_decay"),
    ],
)
def test_config_errors_exit_2_with_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, old, new, expected):
    monkeypatch.chdir(tmp_path)
    path = _bad(tmp_path, old, new)
    rc = run_cli(app, ["run", "--config", str(path), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.startswith("learnact: error: invalid config") and expected in captured.err
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_yaml_config_errors_have_the_same_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text("seeds: [1]\ntrain: {patience: 0}\n"
                    "variants:\n  - name: v{temperature}\n    temperature: [1.0, 0]\n")
    assert run_cli(app, ["run", "-c", str(path), "-o", "out"]) == 2
    err = capsys.readouterr().err
    assert "train.patience: must be >= 1, got 0" in err and "variants[0].temperature[1]: must be > 0, got 0" in err
    assert not (tmp_path / "out").exists()


def test_config_errors_come_before_any_data_is_read(tmp_path, monkeypatch, capsys):
    def touched(*args, **kwargs):
        raise AssertionError("data was read")

    monkeypatch.setattr("learnact.data.load_dataset", touched)  # the only route to data (experiment.run_splits)
    path = _bad(tmp_path, "max_epochs = 3", "max_epochs = 0")
    assert run_cli(app, ["run", "-c", str(path), "-o", str(tmp_path / "out")]) == 2
    assert "train.max_epochs: must be >= 1, got 0" in capsys.readouterr().err


def test_all_problems_in_one_line_from_a_real_process(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent("""
        name = "bad"
        seeds = [1]
        [data]
        test_size = 1.5
        [train]
        patience = 0
        max_epoch = 3
        [[variants]]
        name = "v{temperature}"
        temperature = [0.0, 1.0]
        candidates = ["relu", "tahn"]
    """))
    proc = subprocess.run([*CLI, "run", "--config", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("learnact: error: invalid config, 5 problems: (1) data.test_size: must be in (0, 1)")
    for part in ("train.patience: must be >= 1, got 0", "train.max_epoch: unknown key (did you mean 'max_epochs'?)",
                 "variants[0].temperature[0]: must be > 0, got 0.0",
                 "variants[0].candidates[1]: unknown activation 'tahn'"):
        assert part in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_option_errors_exit_2(tmp_path, capsys):
    path = _bad(tmp_path, "max_epochs = 3", "max_epochs = 3")
    cases = [
        (["--preset", "paper", "--config", str(path)], "give --preset or --config, not both"),
        (["--config", str(path), "--engine", "warp"], "unknown engine 'warp'; valid: sequential"),
        (["--config", str(path), "--executor", "ray"], "unknown executor 'ray'; valid: local, processes, dask"),
        (["--config", str(path), "--workers", "2"], "--workers applies to --executor processes"),
        (["--config", str(path), "--out", str(tmp_path / "no" / "dir")], "does not exist; create it first"),
    ]
    for args, message in cases:
        assert run_cli(app, ["run", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_run_prints_progress_lines_log_and_leaderboard_then_resumes_from_the_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = _bad(tmp_path, "max_epochs = 3", "max_epochs = 3")
    assert run_cli(app, ["run", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    folders = [p for p in tmp_path.iterdir() if p.name.startswith("learnact-study-tiny-")]
    assert len(folders) == 1  # the default folder, named after the study
    folder = folders[0].name
    assert f"\nstudy folder: {folder}\n" in captured.out
    # the main job ends with the leaderboard and the report's path
    assert captured.out.strip().splitlines()[-1] == f"report:       {folder}/report/index.md  " \
                                                    f"(HTML: {folder}/report/index.html; LaTeX: " \
                                                    f"{folder}/report/report.tex)"
    assert (tmp_path / folder / "report" / "index.md").is_file()
    assert (tmp_path / folder / "results.csv").is_file()
    assert "tiny: 1 variants x 2 seeds (2 trained, 0 already done)" in captured.out
    assert captured.err.startswith(f"learnact: study 'tiny' from config {path}; folder {folder} (log: ")
    assert f"folder {folder} (log: {folder}/study.log)" in captured.err
    assert "learnact: [1/2] elapsed" in captured.err and "ETA" in captured.err
    assert (tmp_path / folder / "leaderboard.csv").is_file()
    # the folder alone is enough to resume: the resolved study is in it
    assert run_cli(app, ["run", "--out", folder, "--quiet", "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "(0 trained, 2 already done)" in captured.out and captured.err == ""


def test_run_computes_the_seed_statistics_once_for_the_leaderboard_and_the_report(tmp_path, monkeypatch):
    # one computation behind the terminal leaderboard, leaderboard.csv and the report's tables and figures
    from learnact.evaluation import aggregate
    from learnact.reporting import study_view

    calls = []

    def counted(tidy, *args, **kwargs):
        calls.append(len(tidy))
        return original(tidy, *args, **kwargs)

    original = aggregate.seed_aggregates
    monkeypatch.setattr(aggregate, "seed_aggregates", counted)
    monkeypatch.setattr(study_view, "seed_aggregates", counted)
    path = _bad(tmp_path, "max_epochs = 3", "max_epochs = 3")
    assert run_cli(app, ["run", "--config", str(path), "--out", str(tmp_path / "study"), "--quiet"]) == 0
    assert (tmp_path / "study" / "report" / "tables" / "leaderboard.csv").is_file()
    assert len(calls) == 1


def test_no_study_given_means_the_paper_preset(tmp_path):
    assert _study_source(None, None, None) == ("paper", "preset paper")
    assert _study_source(None, None, tmp_path) == ("paper", "preset paper")
    assert _study_source("headline", None, None) == ("headline", "preset headline")
    (tmp_path / "study.json").write_text("{}")  # not one learnact wrote: --out is then refused as not a study
    assert _study_source(None, None, tmp_path) == ("paper", "preset paper")
    from learnact.experiment import load_study
    from learnact.experiment.grid import study_to_dict

    (tmp_path / "study.json").write_text(json.dumps(study_to_dict(load_study("headline"))))
    assert _study_source(None, None, tmp_path)[0] == tmp_path / "study.json"


@pytest.fixture()
def planned(monkeypatch):
    """`learnact run` up to training: the study it would train ({name, n_runs}); nothing is trained or split."""
    import contextlib

    from learnact.experiment import run_splits, runner

    seen: dict[str, object] = {}

    def stop(study, folder, **kwargs):
        seen.update(name=study.name, n_runs=len(study.runs()), folder=folder)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_study", stop)
    monkeypatch.setattr(run_splits, "prefetch_inputs", lambda study: contextlib.nullcontext())
    return seen


@pytest.mark.parametrize("args, name, n_runs", [
    ([], "paper", 75),  # the README's headline command
    (["--preset", "paper", "--out", "p1"], "paper", 75),
    (["--preset", "suite", "--out", "y"], "suite", 405),
])
def test_a_preset_is_the_shipped_one_whatever_the_current_folder_holds(tmp_path, monkeypatch, planned, args,
                                                                       name, n_runs):
    """A folder `paper` (a LaTeX paper) and an earlier study folder `suite` beside the command: `learnact run`
    and `--preset NAME` still train the shipped preset (had been: the folder, refused or silently trained)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "main.tex").write_text("\\documentclass{article}\n")
    suite = tmp_path / "suite"
    suite.mkdir()
    store.write_json_atomic(suite / "study.json", {"name": "mine", "seeds": [1], "variants": [
        {"name": "relu", "kind": "fixed", "activation": "relu"}]})
    assert run_cli(app, ["run", "-q", "--no-report", *args]) == 130
    assert (planned["name"], planned["n_runs"]) == (name, n_runs)
    assert str(planned["folder"]) != "suite"


@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_study_argument_naming_a_preset_and_a_path_is_refused_naming_both_fixes(tmp_path, monkeypatch, capsys,
                                                                                  planned, what):
    monkeypatch.chdir(tmp_path)
    if what == "folder":
        (tmp_path / "headline").mkdir()
    else:
        (tmp_path / "headline").write_text("")
    assert run_cli(app, ["run", "headline", "-q", "--no-report"]) == 2
    assert capsys.readouterr().err == (
        f"learnact: error: study 'headline' names both the built-in preset and the {what} 'headline' in this "
        f"folder; give --preset headline for the preset, or ./headline for the {what}\n")
    assert not planned


def test_a_study_folder_given_as_a_path_still_resumes_there(tmp_path, monkeypatch, planned):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "headline").mkdir()
    from learnact.experiment.grid import study_from_dict, study_to_dict

    mine = study_from_dict({"name": "mine", "seeds": [1], "variants": [
        {"name": "relu", "kind": "fixed", "activation": "relu"}]})
    store.write_json_atomic(tmp_path / "headline" / "study.json", study_to_dict(mine))  # as learnact run writes it
    assert run_cli(app, ["run", "./headline", "-q", "--no-report"]) == 130
    assert (planned["name"], planned["n_runs"], str(planned["folder"])) == ("mine", 1, "headline")


def test_an_unknown_preset_is_one_line_naming_the_presets(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.toml").write_text("")
    assert run_cli(app, ["run", "--preset", "study.toml", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("learnact: error: --preset 'study.toml' is not a built-in preset") and err.count("\n") == 1
    assert "presets: families, headline, paper, suite" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_plain_lines_otherwise_nothing_when_quiet():
    tty = _Terminal()
    with study_progress(False, tty) as update:
        update(1, 4, "")
        for done in (2, 3, 4):
            update(done, 4, f"run{done}")
    text = tty.getvalue()
    assert "4/4" in text and "ETA" in text and "elapsed" in text
    plain = io.StringIO()
    with study_progress(False, plain) as update:
        update(1, 4, "")
        update(2, 4, "run2")
    assert plain.getvalue().splitlines()[0] == "learnact: 4 runs, 1 already finished"
    assert plain.getvalue().splitlines()[1].startswith("learnact: [2/4] elapsed 0s, ETA ")
    with study_progress(True, plain) as update:
        assert update is None


def test_the_terminal_bar_is_drawn_by_its_redraw_thread_not_at_each_update(monkeypatch):
    # a redraw at each finished run cost the paper study's 76 updates 0.12-0.16 s, most of it while the run folders
    # were written, before the leaderboard: the updates only record, the redraw thread draws (and the bar's end)
    from learnact.cli import progress

    monkeypatch.setattr(progress, "REDRAW_S", 60.0)  # no redraw by the thread within the test
    tty = _Terminal()
    with study_progress(False, tty) as update:
        update(1, 40, "")
        for done in range(2, 41):
            update(done, 40, f"run{done}")
    text = tty.getvalue()
    assert "40/40" in text and "run40" in text  # the bar's last state, drawn as it ends
    assert not any(f"{done}/40" in text for done in range(2, 40)), text


def _child_writes_to(expected_stderr) -> int:
    """In a forked child: 0 if the bar's lock is free here and stderr is ``expected_stderr`` (the stream the bar
    replaced), after writing a line to it; 4 if a thread the fork left behind holds the lock, 3 for another
    stderr."""
    from learnact.cli import progress

    if not progress._DISPLAY_LOCK.acquire(blocking=False):
        return 4
    progress._DISPLAY_LOCK.release()
    sys.stderr.write("a line from a forked worker\n")
    sys.stderr.flush()
    return 0 if sys.stderr is expected_stderr else 3


def test_the_terminal_bar_leaves_training_its_forked_workers():
    """:func:`_terminal_bar_case` in a fresh interpreter: in the full suite an earlier test can leave a thread in
    this one, and forking is then (rightly) refused."""
    run_case(__file__, "_terminal_bar_case", timeout=180)


def _terminal_bar_case() -> None:
    # rich's own refresh thread made can_fork() False on a terminal, so `learnact run` trained in one process there
    # (the paper study's stacks took twice as long as with its output in a file). The bar's redraw thread holds
    # a lock that every fork waits for, so forking stays allowed, and safe, while it runs.
    import os

    from learnact import _processes
    from learnact.cli import progress
    from learnact.training.scheduling import run_stacks

    assert _processes.can_fork(True)  # this fresh process runs no other thread
    progress.REDRAW_S = 0.0005  # the bar redraws all the time
    original_stderr = sys.stderr
    with study_progress(False, _Terminal()) as update:
        update(0, 4, "")
        assert any(t.name == _processes.DISPLAY_THREAD for t in threading.enumerate())
        assert _processes.can_fork(True)
        # training's default executor forks its workers: the stacks run in other processes
        pids = [pid for _, pid in run_stacks([os.getpid] * 4, [1.0] * 4, workers=2)]
        assert len(pids) == 4 and os.getpid() not in pids
        # forks in the middle of redraws: no child hangs on a lock, and each writes to the stream the bar replaced
        children = []
        for _ in range(40):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                code = 1
                try:
                    code = _child_writes_to(original_stderr)
                finally:
                    os._exit(code)
            children.append(pid)
        deadline = time.monotonic() + 60
        codes = {}
        while len(codes) < len(children) and time.monotonic() < deadline:
            for pid in children:
                if pid not in codes:
                    ended, status = os.waitpid(pid, os.WNOHANG)
                    if ended:
                        codes[pid] = os.waitstatus_to_exitcode(status)
            time.sleep(0.01)
        hung = [pid for pid in children if pid not in codes]
        for pid in hung:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert not hung, f"{len(hung)} forked children hung"
        assert set(codes.values()) == {0}, codes
        update(4, 4, "run4")
    assert not any(t.name == _processes.DISPLAY_THREAD for t in threading.enumerate())  # the thread ends with it


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (42, "42s"), (185, "3m05s"), (7620, "2h07m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_threads_are_restored_after_a_local_run(tmp_path):
    import torch

    before = torch.get_num_threads()
    run_study(study_from_dict({**KILL_STUDY, "seeds": [1], "variants": KILL_STUDY["variants"][:1]}),
              tmp_path / "s", threads=2)
    assert torch.get_num_threads() == before


def test_names_with_square_brackets_print_as_written_in_the_leaderboard_and_compare(tmp_path):
    """rich read ``a[b]`` as ``a`` plus a style tag, ``[bold]x`` as a bold ``x``, and the step column's unit
    ``[ms]`` was lost."""
    from console import run_learnact

    (tmp_path / "study.json").write_text(json.dumps({
        "name": "brackets", "seeds": [1, 2], "data": {"dataset": "iris"}, "backbone": {"hidden": [4]},
        "train": {"max_epochs": 2}, "reference": "a[b]",
        "variants": [{"name": "a[b]", "kind": "fixed", "activation": "relu"},
                     {"name": "[bold]x", "kind": "fixed", "activation": "tanh"}]}))
    run = run_learnact("run", "--config", "study.json", "--out", "s", "--no-report", cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    board = run.stdout
    assert "┃ [ms] ┃" in board and "│ a[b] " in board and "│ [bold]x " in board, board  # the unit under "step"
    compare = run_learnact("compare", "s", "--reference", "a[b]", "--metric", "accuracy", cwd=tmp_path, timeout=300)
    assert compare.returncode == 0, compare.stderr
    assert "variants vs a[b]" in compare.stdout and "│ [bold]x " in compare.stdout, compare.stdout


def test_report_tables_on_the_terminal_print_bracketed_titles_and_cells_as_written(capsys):
    from learnact.cli.display import print_report_table
    from learnact.reporting.render import Cell, Table

    table = Table(name="t", caption="c", header=["variant", "p [%]"], rows=[[Cell("a[b]", bold=True), Cell("1")],
                                                                           [Cell("[bold]x"), Cell("2")]],
                  align=["l", "r"], data=pd.DataFrame({"variant": ["a[b]", "[bold]x"]}), notes="rows [sorted]")
    print_report_table(table, "study [v2]: ranks")
    out = capsys.readouterr().out
    for text in ("study [v2]: ranks", "p [%]", "a[b]", "[bold]x", "rows [sorted]"):
        assert text in out, out


def test_glyphs_the_figures_font_lacks_are_one_warning_line_for_the_whole_report(tmp_path):
    """matplotlib warned once per character, text and figure (dozens of two-line warnings for one name)."""
    from console import run_learnact

    (tmp_path / "study.json").write_text(json.dumps({
        "name": "glyphs", "seeds": [1, 2], "data": {"dataset": "iris"}, "backbone": {"hidden": [4]},
        "train": {"max_epochs": 2},
        "variants": [{"name": "\u6a21\u578b", "kind": "fixed", "activation": "relu"},
                     {"name": "plain", "kind": "fixed", "activation": "tanh"}]}), encoding="utf-8")
    run = run_learnact("run", "--config", "study.json", "--out", "s", "-q", cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("learnact: warning: the figures' font has no glyph for "), lines
    assert "\u6a21 (U+6A21)" in lines[0] and "\u578b (U+578B)" in lines[0]
    assert (tmp_path / "s" / "report" / "figures" / "leaderboard.png").is_file()
    debug = run_learnact("--debug", "report", "s", cwd=tmp_path, timeout=300)  # Python's own format, file and line
    assert debug.returncode == 0 and "UserWarning: the figures' font has no glyph" in debug.stderr, debug.stderr


def test_the_paper_leaderboard_off_a_terminal_is_one_line_a_variant_with_whole_names(capsys):
    """Off a terminal (a log, a pipe) the step column's unit, on a second header line, must not make every row
    wrap; and no name is cut to fit 120 columns (at 120, "adaptive_entrop…": the table is as wide as it needs)."""
    from learnact.cli.display import print_leaderboard

    names = ["baseline_tanh", "adaptive_entropy_T0.7_lam0.001", "adaptive_input_gate_T0.7"]
    table = pd.DataFrame({"variant": names, "n_seeds": 5, "n_diverged": 0, "params_mean": 4103.0,
                          "flops_per_sample_mean": 22378.0, "step_latency_ms_mean": 12.34,
                          **{f"{m}_{s}": 0.9734 for m in ("accuracy", "f1", "roc_auc") for s in ("mean", "std")}})
    print_leaderboard(table)
    lines = capsys.readouterr().out.splitlines()
    rows = [ln for ln in lines if ln.startswith("│")]
    assert len(rows) == len(names) and max(map(len, lines)) <= 140, "\n".join(lines)
    assert [row.split("│")[1].strip() for row in rows] == names
    assert any("step" in ln for ln in lines) and any("[ms]" in ln for ln in lines)


def test_off_a_terminal_long_variant_names_are_printed_whole_one_line_a_variant(capsys):
    # at 120 columns rich cut them: "spline_grid_size5" and "spline_grid_size10-granularitylayer" both read
    # "spline_grid_siz…"; a log is widened to the table instead
    from learnact.cli.display import print_leaderboard

    names = ["spline_grid_size10-granularitylayer_and_then_some_more_words", "spline_grid_size5"]
    table = pd.DataFrame({"variant": names, "n_seeds": 5, "n_diverged": 0, "params_mean": 4103.0,
                          "flops_per_sample_mean": 22378.0, "step_latency_ms_mean": 12.34,
                          **{f"{m}_{s}": 0.9734 for m in ("accuracy", "f1", "roc_auc") for s in ("mean", "std")}})
    print_leaderboard(table)
    lines = capsys.readouterr().out.splitlines()
    rows = [ln for ln in lines if ln.startswith("│")]
    assert len(rows) == len(names), "\n".join(lines)
    for name, row in zip(names, rows, strict=True):
        assert row.split("│")[1].strip() == name and "…" not in row


def test_a_write_error_without_out_says_to_rerun_with_out_naming_the_folder():
    """`learnact run` without --out made a new folder: "rerun the same command" would start another one."""
    from learnact.cli.run_cmd import _resume_hint
    from learnact.store import StoreWriteError

    text = f"cannot write 'x': No space left on device; free some space, then {StoreWriteError.RERUN} to resume"
    with pytest.raises(StoreWriteError) as caught, _resume_hint(True, Path("learnact-study-s-20261206-231157")):
        raise StoreWriteError(text)
    assert str(caught.value).endswith("then rerun with --out learnact-study-s-20261206-231157 to resume")
    with pytest.raises(StoreWriteError) as caught, _resume_hint(False, Path("mine")):  # --out given: as it was
        raise StoreWriteError(text)
    assert str(caught.value) == text


def test_pdf_with_no_report_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """--pdf compiles the report that --no-report leaves out: refused (exit 2), as --workers without processes."""
    monkeypatch.chdir(tmp_path)
    assert run_cli(app, ["run", "--preset", "headline", "--out", "s", "--no-report", "--pdf", "-q"]) == 2
    err = capsys.readouterr().err
    assert err == "learnact: error: --pdf compiles the report, and --no-report builds none; drop one of them\n"
    assert not (tmp_path / "s").exists()


def test_resuming_a_fast_engine_study_with_the_default_engine_is_one_line(tmp_path, capsys, monkeypatch):
    """The tester's case: a vectorized-fast study resumed with the default engine had trained the missing runs
    exactly and mixed them with the fast ones ("1 trained, 1 already done"); now exit 2, nothing trained."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lat.toml").write_text('name="lat"\nseeds=[1]\n[backbone]\nhidden=[8]\n[train]\nmax_epochs=3\n'
                                       '[[variants]]\nname="b_{activation}"\nkind="fixed"\n'
                                       'activation=["relu","tanh"]\n')
    assert run_cli(app, ["run", "lat.toml", "--out", "vf", "--engine", "vectorized-fast", "-q", "--no-report"]) == 0
    for folder in (tmp_path / "vf" / "runs").glob("b_tanh*"):
        shutil.rmtree(folder)
    capsys.readouterr()
    assert run_cli(app, ["run", "lat.toml", "--out", "vf", "-q", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("learnact: error: 1 finished run of study folder 'vf' was trained by a fast engine "
                          "(vectorized-fast)") and err.count("\n") == 1, err
    assert [f.name.split("__")[0] for f in store.finished_runs(tmp_path / "vf")] == ["b_relu"]
