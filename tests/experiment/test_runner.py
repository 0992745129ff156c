"""The runner: resume, redo half-written runs, --force, changed configs, groups, failures (issue 4)."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

import pandas as pd
import pytest
from experiment_helpers import result_table, tiny_raw

from learnact import store
from learnact.config import RunConfig
from learnact.exceptions import ConfigError, LearnactError, RunStoreError
from learnact.experiment.executors import ExecutorPool, InProcessExecutor, run_group
from learnact.experiment.grid import load_study, study_from_dict
from learnact.experiment.runner import LOG_FILE, plan_groups, run_study


def _done_stamps(folder) -> dict[str, tuple[int, int]]:
    """Identity of every DONE marker: a rewritten run gets a new one."""
    return {p.name: ((p / "DONE").stat().st_ino, (p / "DONE").stat().st_mtime_ns)
            for p in store.finished_runs(folder)}


def test_first_run_trains_all_and_a_rerun_trains_nothing(tmp_path, tiny_study):
    folder = tmp_path / "study"
    calls = []
    first = run_study(tiny_study, folder, progress=lambda d, n, r: calls.append((d, n, r)))
    ids = [r.run_id for r in tiny_study.runs()]
    assert (first.n_runs, first.n_trained, first.n_skipped) == (4, 4, 0)
    assert list(first.trained) == ids
    assert calls == [(0, 4, ""), *[(i + 1, 4, rid) for i, rid in enumerate(ids)]]
    stamps = _done_stamps(folder)
    second = run_study(tiny_study, folder)
    assert (second.n_trained, second.n_skipped, second.trained) == (0, 4, ())
    assert _done_stamps(folder) == stamps
    log = (folder / LOG_FILE).read_text()
    assert log.count("session start") == 2 and log.count(" INFO trained ") == 4
    assert "4 runs: 4 finished, 0 to train" in log


def test_the_resolved_config_is_saved_and_loadable(tmp_path, tiny_study):
    folder = tmp_path / "study"
    run_study(tiny_study, folder)
    saved = json.loads((folder / "study.json").read_text())
    assert saved["seeds"] == [0, 1] and [v["name"] for v in saved["variants"]] == ["fixed_tanh", "gated"]
    assert [r.run_id for r in load_study(folder / "study.json").runs()] == [r.run_id for r in tiny_study.runs()]


def test_half_written_runs_are_redone(tmp_path, tiny_study):
    folder = tmp_path / "study"
    run_study(tiny_study, folder)
    before = result_table(folder)
    victim = tiny_study.runs()[2]
    (store.run_dir(folder, victim) / "DONE").unlink()  # as if killed before DONE
    (folder / "runs" / f".tmp-{victim.run_id}-999").mkdir()  # as if killed while writing
    stamps = _done_stamps(folder)
    result = run_study(tiny_study, folder)
    assert result.trained == (victim.run_id,) and result.n_cleaned == 2
    assert {k: v for k, v in _done_stamps(folder).items() if k != victim.run_id} == stamps
    pd.testing.assert_frame_equal(result_table(folder), before)


def test_force_retrains_everything_with_the_same_results(tmp_path, tiny_study):
    folder = tmp_path / "study"
    run_study(tiny_study, folder)
    before, stamps = result_table(folder), _done_stamps(folder)
    result = run_study(tiny_study, folder, force=True)
    assert result.n_trained == 4 and result.n_skipped == 0
    after = _done_stamps(folder)
    assert set(after) == set(stamps) and all(after[k] != stamps[k] for k in stamps)
    pd.testing.assert_frame_equal(result_table(folder), before)


def test_changing_a_field_retrains_only_the_runs_it_affects(tmp_path, tiny_study):
    folder = tmp_path / "study"
    run_study(tiny_study, folder)
    changed = study_from_dict(tiny_raw(temperature=0.5))
    result = run_study(changed, folder)
    gated = {r.run_id for r in changed.runs() if r.variant == "gated"}
    assert set(result.trained) == gated and result.n_skipped == 2
    assert len(result.superseded) == 2 and all(rid.startswith("gated__") for rid in result.superseded)
    assert sorted(result_table(folder)["run_id"]) == sorted(r.run_id for r in changed.runs())
    # going back: the earlier runs come back from superseded/, nothing is retrained
    back = run_study(tiny_study, folder)
    assert back.trained == () and sorted(back.restored) == sorted(result.superseded)
    assert sorted(result_table(folder)["run_id"]) == sorted(r.run_id for r in tiny_study.runs())


def test_bad_options_fail_before_anything_is_written(tmp_path, tiny_study):
    folder = tmp_path / "study"
    with pytest.raises(ConfigError, match="unknown engine 'fast'; valid: sequential"):
        run_study(tiny_study, folder, engine="fast")
    with pytest.raises(ConfigError, match="group size must be an integer >= 1, got 0"):
        run_study(tiny_study, folder, group_size=0)
    with pytest.raises(ConfigError, match="threads must be an integer >= 1, got 0"):
        run_study(tiny_study, folder, threads=0)
    with pytest.raises(ConfigError, match="parent .* does not exist; create it first"):
        run_study(tiny_study, tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []


def _runs(n_seeds: int, **data) -> list[RunConfig]:
    raw = tiny_raw(n_seeds=n_seeds)
    if data:
        raw["data"] = data
    return study_from_dict(raw).runs()


def test_plan_groups():
    runs = _runs(3)
    assert plan_groups(runs, "sequential", n_slots=4) == [[r] for r in runs]
    assert plan_groups(runs, "vectorized", n_slots=1) == [runs]
    assert [len(g) for g in plan_groups(runs, "vectorized", n_slots=4)] == [2, 2, 2]
    assert [len(g) for g in plan_groups(runs, "sequential", group_size=4)] == [4, 2]
    mixed = runs[:2] + _runs(1, test_size=0.3)
    groups = plan_groups(mixed, "vectorized", n_slots=1)
    assert groups == [runs[:2], mixed[2:]]  # runs on other data never share a task
    with pytest.raises(ConfigError, match="group size must be an integer >= 1"):
        plan_groups(runs, group_size=0)


class _FailSecond(InProcessExecutor):
    """Fails the second task, as a crashed worker would."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.n += 1
        if self.n == 2:
            future: Future = Future()
            future.set_exception(RuntimeError("worker exploded"))
            return future
        return super().submit(fn, *args, **kwargs)


def test_a_failed_task_keeps_what_finished(tmp_path, tiny_study):
    folder = tmp_path / "study"
    with pytest.raises(RuntimeError, match="worker exploded"):
        run_study(tiny_study, folder, engine="sequential", executor=_FailSecond())  # one run per task
    assert [p.name for p in store.finished_runs(folder)] == [tiny_study.runs()[0].run_id]
    assert "stopped: worker exploded" in (folder / LOG_FILE).read_text()
    result = run_study(tiny_study, folder)  # resume
    assert result.n_skipped == 1 and result.n_trained == 3


class _WrongRuns(InProcessExecutor):
    """An engine that answers a task with the wrong runs."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        engine, runs, threads = args
        return super().submit(run_group, engine, [runs[0].model_copy(update={"seed": 99})], threads)


def test_results_for_other_runs_are_refused(tmp_path, tiny_study):
    with pytest.raises(RunStoreError, match="the engine returned runs .* for a task of runs"):
        run_study(tiny_study, tmp_path / "study", executor=_WrongRuns())
    assert store.finished_runs(tmp_path / "study") == []


class _CrashingPool(ProcessPoolExecutor):
    """A pool whose worker dies in the first task, as one killed for memory would."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return super().submit(os._exit, 1)


def test_a_dead_worker_gives_a_clear_message(tmp_path, tiny_study):
    with _CrashingPool(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(LearnactError, match="a worker stopped while training \\(BrokenProcessPool: .*Finished "
                                                "runs are kept: rerun the same command to resume"):
            run_study(tiny_study, tmp_path / "study", executor=ExecutorPool(pool, 1, "crash"))
    assert "stopped: " in (tmp_path / "study" / LOG_FILE).read_text()
