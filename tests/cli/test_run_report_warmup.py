"""``learnact run`` starts the report workers' fork server when the first run is written, and only when the
report will use workers: the imports then run on the core that writing run folders leaves idle."""

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
    update = run_cmd._warming(lambda *a: seen.append(a), True, parallel.MIN_RUNS, suite=False)
    update(0, 40, "")  # the start, before any training
    assert warmups == []
    update(1, 40, "a")
    update(2, 40, "b")
    assert warmups == [()]  # once; not torch: this process evaluates the activation shapes itself
    assert seen == [(0, 40, ""), (1, 40, "a"), (2, 40, "b")]  # the progress display still sees every call
    quiet = run_cmd._warming(None, True, parallel.MIN_RUNS, suite=False)  # --quiet: no display, still warmed
    assert quiet is not None
    quiet(1, 40, "a")
    assert len(warmups) == 2


def test_no_fork_server_where_the_report_uses_no_workers(warmups):
    def show(*a):
        return None

    assert run_cmd._warming(show, False, 75, suite=False) is show  # --no-report
    assert run_cmd._warming(show, True, parallel.MIN_RUNS - 1, suite=False) is show  # a small study: one process
    big = parallel.MAX_RUNS_PER_FIGURE + 1
    assert run_cmd._warming(show, True, big, suite=False) is show  # figures of a big study: one process
    assert run_cmd._warming(show, True, big, suite=True) is not show  # a suite's data sets: workers
    assert warmups == []


def test_a_suites_fork_server_imports_torch_for_its_data_set_reports(warmups):
    update = run_cmd._warming(None, True, parallel.MIN_RUNS, suite=True)
    update(1, 40, "a")
    assert warmups == [("torch", "learnact.model")]  # each data set's report evaluates its activation shapes
