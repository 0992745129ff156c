"""A run id does not hold the engine: the exact engines' runs are bit-identical, a fast engine's are not. Each fast
run records that in its metrics.json, and resuming a study with the other kind of engine is refused before anything
is written (it had silently mixed the two); the exact engines' runs and ids are as before."""

from __future__ import annotations

import json

import pytest
from experiment_helpers import tiny_raw

from learnact import store
from learnact.exceptions import ConfigError
from learnact.experiment.engines import STREAM_KEY
from learnact.experiment.grid import study_from_dict
from learnact.experiment.runner import run_study


def _study(seeds: list[int]):
    raw = tiny_raw()
    return study_from_dict({**raw, "seeds": seeds, "variants": raw["variants"][:1]})


def _metrics(folder) -> list[dict]:
    return [json.loads((f / "metrics.json").read_text()) for f in store.finished_runs(folder)]


def _listing(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".lock"}


@pytest.mark.parametrize("first, then", [("vectorized-fast", "vectorized"), ("vectorized", "vectorized-fast"),
                                         ("vectorized-fast", "sequential")])
def test_resuming_with_the_other_kind_of_engine_is_refused_and_writes_nothing(tmp_path, first, then):
    folder = tmp_path / "study"
    run_study(_study([0]), folder, engine=first)
    assert [m.get(STREAM_KEY) for m in _metrics(folder)] == (["fast"] if first == "vectorized-fast" else [None])
    before = _listing(folder)
    with pytest.raises(ConfigError) as caught:
        run_study(_study([0, 1]), folder, engine=then)
    text = str(caught.value)
    assert "\n" not in text and "1 finished run of study folder" in text and "nothing was trained" in text
    assert f"rerun with --engine {first}" in text and "--out NEW_FOLDER" in text and "--force" in text
    assert _listing(folder) == before  # the study is left as it was
    result = run_study(_study([0, 1]), folder, engine=first)  # the fix: the same kind of engine
    assert (result.n_trained, result.n_skipped) == (1, 1)
    forced = run_study(_study([0, 1]), folder, engine=then, force=True)  # or retrain every run
    assert forced.n_trained == 2
    assert {m.get(STREAM_KEY) for m in _metrics(folder)} == {"fast" if then == "vectorized-fast" else None}


def test_the_exact_engines_resume_each_other_and_keep_their_files_and_ids(tmp_path):
    folder = tmp_path / "study"
    study = _study([0])
    run_study(study, folder, engine="sequential")
    assert STREAM_KEY not in _metrics(folder)[0]
    result = run_study(_study([0, 1]), folder, engine="vectorized")
    assert (result.n_trained, result.n_skipped) == (1, 1)
    assert [f.name for f in store.finished_runs(folder)] == sorted(r.run_id for r in _study([0, 1]).runs())


def test_a_fast_run_in_superseded_that_the_study_would_move_back_is_checked(tmp_path):
    folder = tmp_path / "study"
    run_study(_study([0]), folder, engine="vectorized-fast")
    run_study(_study([1]), folder, engine="vectorized-fast")  # seed 0's run goes to superseded/
    assert not any(f.name.endswith(r.run_id) for f in store.finished_runs(folder) for r in _study([0]).runs())
    with pytest.raises(ConfigError, match="1 finished run of study folder"):
        run_study(_study([0]), folder, engine="vectorized")
