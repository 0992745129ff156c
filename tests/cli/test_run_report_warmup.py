"""``learnact run`` starts the report workers' fork server once training is over (before the step costs are timed
and the run folders written), or at the first written run where the runs train elsewhere, and only when the report
will use workers: the imports then run on the core that the cost pass and the writes leave idle."""

from __future__ import annotations

import pytest

from learnact.cli import run_cmd
from learnact.reporting import parallel


@pytest.fixture
def warmups(monkeypatch):
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(parallel, "warm_up", lambda extra=(): calls.append(tuple(extra)) or True)
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)
    monkeypatch.delenv(parallel.WORKERS_ENV, raising=False)
    return calls


def test_the_fork_server_starts_once_at_the_first_written_run(warmups):
    seen = []
    update = run_cmd._WarmUp(True, parallel.MIN_RUNS, suite=False).on_written(lambda *a: seen.append(a))
    update(0, 40, "")  # the start, before any training
    assert warmups == []
    update(1, 40, "a")
    update(2, 40, "b")
    assert warmups == [()]  # once; not torch: this process evaluates the activation shapes itself
    assert seen == [(0, 40, ""), (1, 40, "a"), (2, 40, "b")]  # the progress display still sees every call
    quiet = run_cmd._WarmUp(True, parallel.MIN_RUNS, suite=False).on_written(None)  # --quiet: still warmed
    assert quiet is not None
    quiet(1, 40, "a")
    assert len(warmups) == 2


def test_training_over_starts_it_and_the_first_written_run_does_not_again(warmups):
    warm = run_cmd._WarmUp(True, parallel.MIN_RUNS, suite=False)
    update = warm.on_written(None)
    warm.start(parallel.MIN_RUNS)  # engines.when_trained's call, before the cost pass
    assert warmups == [()]
    assert update is not None
    update(1, 40, "a")
    warm.start(parallel.MIN_RUNS)  # a second group trained: nothing more
    assert warmups == [()]


@pytest.mark.parametrize("console", [True, False])
def test_training_over_freezes_what_the_console_script_holds_and_starts_it(warmups, monkeypatch, console):
    # the console script ends after the study: its artefacts need no collection (nor the report helper's pages
    # copied by one); a Python session calling cli.main gets the trained models' cycles back as before
    import gc
    import sys

    monkeypatch.setattr(sys.modules["learnact.cli.app"], "_CONSOLE", console)  # the module (cli.app is the Typer app)
    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    run_cmd._WarmUp(True, parallel.MIN_RUNS, suite=False).trained(parallel.MIN_RUNS)
    assert frozen == ([True] if console else [])
    assert warmups == [()]


def test_a_fork_server_that_cannot_start_does_not_fail_the_training(warmups, monkeypatch):
    def refuse(extra=()):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(parallel, "warm_up", refuse)
    warm = run_cmd._WarmUp(True, parallel.MIN_RUNS, suite=False)
    warm.start(parallel.MIN_RUNS)  # called from the training group: no error there
    warm.start(parallel.MIN_RUNS)  # and not tried again


def test_no_fork_server_where_the_report_uses_no_workers(warmups):
    def show(*a):
        return None

    assert run_cmd._WarmUp(False, 75, suite=False).on_written(show) is show  # --no-report
    small = run_cmd._WarmUp(True, parallel.MIN_RUNS - 1, suite=False)  # a small study: one process
    assert small.on_written(show) is show
    small.start(parallel.MIN_RUNS - 1)
    big = parallel.MAX_RUNS_PER_FIGURE + 1
    assert run_cmd._WarmUp(True, big, suite=False).on_written(show) is show  # figures of a big study: one process
    assert run_cmd._WarmUp(True, big, suite=True).on_written(show) is not show  # a suite's data sets: workers
    assert warmups == []


def test_a_suites_fork_server_imports_torch_for_its_data_set_reports(warmups):
    run_cmd._WarmUp(True, parallel.MIN_RUNS, suite=True).start(parallel.MIN_RUNS)
    assert warmups == [("torch", "learnact.model", "scipy.special")]  # each data set's report: shapes, tables


def test_learnact_run_starts_it_before_the_cost_pass_and_any_run_folder(warmups, monkeypatch, tmp_path):
    """Through the command itself: the fork server is asked for while no run folder exists yet and before the
    step costs are timed."""
    from typer.testing import CliRunner

    from learnact.cli.app import app
    from learnact.experiment import artifacts

    out = tmp_path / "study"
    seen: list[tuple[str, int]] = []
    monkeypatch.setattr(parallel, "warm_up", lambda extra=(): seen.append(
        ("warm", len(list((out / "runs").glob("*"))) if (out / "runs").is_dir() else 0)) or True)
    real = artifacts.measure_step_costs
    monkeypatch.setattr(artifacts, "measure_step_costs", lambda cases, **kw: seen.append(("costs", 0)) or real(
        cases, **kw))
    monkeypatch.setattr(artifacts, "_COSTS", {})
    config = tmp_path / "study.yaml"
    config.write_text("name: warm\nseeds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]\n"
                      "backbone: {hidden: [4]}\ntrain: {max_epochs: 2, patience: 2}\n"
                      "variants:\n  - {name: tanh, kind: fixed, activation: tanh}\n"
                      "  - {name: relu, kind: fixed, activation: relu}\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(out), "--no-report"])
    assert result.exit_code == 0, result.output
    assert seen == [("costs", 0)]  # --no-report: no fork server
    seen.clear()
    monkeypatch.setattr(artifacts, "_COSTS", {})
    out = tmp_path / "again"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert seen[:2] == [("warm", 0), ("costs", 0)]


_STACKS_TRAIN = """
import sys
from pathlib import Path
from typer.testing import CliRunner
from learnact.cli import run_cmd
from learnact.cli.app import app
from learnact.experiment import artifacts

tmp = Path(sys.argv[1])
out = tmp / "study"
seen = []
run_cmd._WarmUp.preload = lambda self: seen.append(
    f"preload: {len(list((out / 'runs').glob('*'))) if (out / 'runs').is_dir() else 0} runs written")
real = artifacts.measure_step_costs
artifacts.measure_step_costs = lambda cases, **kw: seen.append("costs") or real(cases, **kw)
config = tmp / "study.yaml"
config.write_text("name: early\\nseeds: [1, 2, 3, 4]\\nbackbone: {hidden: [4]}\\n"
                  "train: {max_epochs: 2, patience: 2}\\nvariants:\\n"
                  "  - {name: tanh, kind: fixed, activation: tanh}\\n"
                  "  - {name: gated, kind: gated, candidates: [tanh, relu], gate: layer}\\n")
result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(out), "--no-report", "--threads", "2"])
assert result.exit_code == 0, result.output
print(seen)
"""


def test_learnact_run_imports_what_follows_training_while_the_stacks_train(tmp_path):
    """Through the command itself: while the forked workers train (no run folder written, no step cost timed), the
    command imports what the leaderboard and the report need after training, once. In a fresh interpreter: the
    stacks train in forked workers only where no other thread runs, and an earlier test here may have left one."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _STACKS_TRAIN, str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['preload: 0 runs written', 'costs']"


_PRELOAD = """
import sys
from learnact.cli import run_cmd
names = ("scipy.special", "rich.table", "learnact.reporting.report")
before = [n in sys.modules for n in names]
run_cmd._WarmUp(sys.argv[1] == "report", 75, suite=False).preload()
print(before, [n in sys.modules for n in names], "matplotlib" in sys.modules)
"""


@pytest.mark.parametrize("report", ["report", "no-report"])
def test_the_preload_imports_the_leaderboards_and_the_reports_code_never_matplotlib(report):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _PRELOAD, report], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with_report = report == "report"
    assert done.stdout.split("\n")[0] == f"[False, False, False] [True, True, {with_report}] False"
