"""The study's data checked and split in a forked helper while torch imports (``learnact run``), and ForkedCall."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import learnact
from learnact._processes import ForkedCall, available_cores
from learnact.experiment import run_splits
from learnact.experiment.grid import study_from_dict
from learnact.experiment.run_splits import prefetch_inputs

SRC = Path(learnact.__file__).resolve().parents[1]

needs_two_cores = pytest.mark.skipif(available_cores() < 2, reason="the helper is started only with 2 or more cores")

STUDY = {
    "name": "prefetch",
    "seeds": [1, 7],
    "backbone": {"hidden": [4]},
    "train": {"max_epochs": 2, "patience": 2},
    "variants": [{"name": "fixed_{activation}", "kind": "fixed", "activation": ["relu", "tanh"]}],
}


def _csv(tmp_path, text: str):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


def test_forked_call_returns_the_value_of_a_closure_computed_in_another_process():
    parent = os.getpid()
    call = ForkedCall(lambda: {"pid": os.getpid(), "square": [i * i for i in range(5)]})
    value = call.result()
    assert value["square"] == [0, 1, 4, 9, 16] and value["pid"] != parent
    assert call.result() is value  # collected once


def test_forked_call_gives_the_default_when_the_helper_fails():
    def boom():
        raise RuntimeError("helper failed")

    assert ForkedCall(boom).result(default="fallback") == "fallback"
    assert ForkedCall(lambda: threading.Lock()).result(default="unpicklable") == "unpicklable"


def test_closing_a_forked_call_stops_a_helper_still_running():
    call = ForkedCall(lambda: time.sleep(60))
    pid = call._pid
    start = time.perf_counter()
    call.close()
    assert time.perf_counter() - start < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped


# Forking needs a single-threaded process, which a pytest-xdist worker need not be: the cases that start a
# helper run in a fresh interpreter.
def _fresh(code: str, tmp_path) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_two_cores
def test_prefetched_splits_equal_the_ones_made_here(tmp_path):
    out = _fresh(f"""
        import json
        import numpy as np
        from learnact.experiment import run_splits
        from learnact.experiment.grid import study_from_dict
        from learnact.experiment.run_splits import check_inputs, prefetch_inputs, prepare_splits, split_key
        study = study_from_dict({STUDY!r})
        runs = study.runs()
        here = prepare_splits(runs)
        with prefetch_inputs(study) as started:
            check_inputs(study)
            helper = run_splits._ACTIVE.result()
            prefetched = prepare_splits(runs)
        names = ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test")
        print(json.dumps({{
            "started": started, "released": run_splits._ACTIVE is None,
            "made_all": set(helper["splits"]) == {{split_key(r) for r in runs}},
            "checked": len(helper["checked"]), "same_keys": prefetched.keys() == here.keys(),
            "from_helper": all(prefetched[k] is helper["splits"][k] for k in here),
            "equal": all(np.array_equal(getattr(prefetched[k], n), getattr(here[k], n)) for k in here for n in names),
        }}))
    """, tmp_path)
    assert out == {"started": True, "released": True, "made_all": True, "checked": 1, "same_keys": True,
                   "from_helper": True, "equal": True}


@needs_two_cores
def test_a_data_problem_found_by_the_helper_is_raised_here_as_without_it(tmp_path):
    rows = "\n".join(f"{i},{i % 3},{i % 2}" for i in range(40))
    bad = _csv(tmp_path, "a,b,label\n" + rows + "\n1,oops,0\n")
    out = _fresh(f"""
        import json
        from learnact.exceptions import DataError
        from learnact.experiment import run_splits
        from learnact.experiment.grid import study_from_dict
        from learnact.experiment.run_splits import check_inputs, prefetch_inputs
        study = study_from_dict({{**{STUDY!r}, "data": {{"dataset": {bad!r}}}}})
        messages = []
        try:
            check_inputs(study)
        except DataError as exc:
            messages.append(str(exc))
        with prefetch_inputs(study) as started:
            try:
                check_inputs(study)
            except DataError as exc:
                messages.append(str(exc))
            checked = run_splits._ACTIVE.result()["checked"]
        print(json.dumps({{"started": started, "messages": messages, "checked": checked}}))
    """, tmp_path)
    assert out["started"] and out["checked"] == []
    assert len(out["messages"]) == 2 and out["messages"][0] == out["messages"][1] and "oops" in out["messages"][0]


def test_no_helper_while_another_thread_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with prefetch_inputs(study_from_dict(STUDY)) as started:
            assert not started and run_splits._ACTIVE is None
    finally:
        stop.set()
        thread.join()


# The console script in a fresh interpreter: the atexit handler runs in the process that trained (cli.console
# runs the handlers before os._exit), and prints whether scikit-learn was ever imported there.
_SCRIPT = textwrap.dedent("""
    import atexit, sys
    atexit.register(lambda: print("sklearn imported:", "sklearn" in sys.modules))
    sys.argv = ["learnact", "run", "--config", sys.argv[1], "--out", sys.argv[2], "--no-report", "--quiet"]
    from learnact.cli import console
    console()
""")


@needs_two_cores
def test_learnact_run_trains_without_importing_sklearn_in_its_own_process(tmp_path):
    config = tmp_path / "study.json"
    config.write_text(json.dumps(STUDY))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(config), str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr
    assert "sklearn imported: False" in proc.stdout
    assert len(list((tmp_path / "out" / "runs").iterdir())) == 4


def test_the_helper_loads_each_data_set_once_for_its_checks_and_splits(monkeypatch):
    # mnist1d is generated (about 3 s): loading it once for the check and again for the splits cost a suite 3 s
    import learnact.data

    loads = []
    real = learnact.data.load_dataset

    def counting(name, *args, **kwargs):
        loads.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(learnact.data, "load_dataset", counting)
    study = study_from_dict({**STUDY, "data": {"datasets": ["wine", "spirals"]}})
    work = run_splits._helper_work(study)
    assert sorted(loads) == ["spirals", "wine"]
    assert len(work["checked"]) == 2 and len(work["splits"]) == 4  # 2 data sets x 2 seeds


_HELPER_COLLECTIONS = textwrap.dedent("""
    import gc, json, sys
    from learnact.experiment import run_splits
    from learnact.experiment.grid import study_from_dict
    study = study_from_dict(json.loads(sys.argv[1]))
    seen = []
    gc.callbacks.append(lambda phase, info: seen.append(info["generation"]) if phase == "start" else None)
    work = run_splits._helper_main(study)
    print(json.dumps([len(seen), len(work["splits"])]))
""")


def test_the_helper_imports_scikit_learn_and_splits_without_a_collection():
    # in the helper process (it ends with os._exit, freeing everything at once), collections only walked the
    # scikit-learn being loaded beside the caller's import of torch; in a fresh interpreter, as in the helper
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-c", _HELPER_COLLECTIONS, json.dumps(STUDY)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, 2]


# -- a helper started before its argument is known (learnact run starts the data helper before it reads the study)


def test_a_forked_call_can_start_before_its_argument_and_prepare_meanwhile():
    ready: list[str] = []
    call = ForkedCall(lambda x: (x * 2, list(ready), os.getpid()), takes_input=True,
                      before=lambda: ready.append("imported"))
    call.send(21)
    doubled, seen, pid = call.result()
    assert doubled == 42 and pid != os.getpid()
    assert seen == ["imported"]  # before() ran in the helper, ahead of fn
    assert ready == []  # and not here
    with pytest.raises(ValueError, match="no argument"):
        call.send(1)  # once


def test_a_forked_call_never_given_its_argument_ends_when_closed():
    call = ForkedCall(lambda x: x, takes_input=True)
    pid = call._pid
    start = time.perf_counter()
    call.close()
    assert time.perf_counter() - start < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_forked_call_whose_before_fails_still_computes():
    def broken() -> None:
        raise ImportError("no such module")

    call = ForkedCall(lambda x: x + 1, takes_input=True, before=broken)
    call.send(1)
    assert call.result(default="failed") == 2


@needs_two_cores
def test_the_early_helper_takes_the_study_and_makes_the_same_splits(tmp_path):
    out = _fresh(f"""
        import json, os
        import numpy as np
        from learnact.experiment import run_splits
        from learnact.experiment.grid import study_from_dict
        from learnact.experiment.run_splits import (check_inputs, discard_early, prefetch_inputs, prepare_splits,
                                                    start_early)
        study = study_from_dict({STUDY!r})
        runs = study.runs()
        started = start_early()
        early = run_splits._EARLY
        here = prepare_splits(runs)  # meanwhile, in this process
        with prefetch_inputs(study) as prefetching:
            taken = run_splits._ACTIVE is early
            check_inputs(study)
            helper = run_splits._ACTIVE.result()
            prefetched = prepare_splits(runs)
        names = ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test")
        # one started and never given a study ends when discarded
        start_early()
        pid = run_splits._EARLY._pid
        discard_early()
        try:
            os.kill(pid, 0)
            ended = False
        except ProcessLookupError:
            ended = True
        print(json.dumps({{
            "started": started, "prefetching": prefetching, "taken": taken, "released": run_splits._ACTIVE is None,
            "from_helper": all(prefetched[k] is helper["splits"][k] for k in here),
            "equal": all(np.array_equal(getattr(prefetched[k], n), getattr(here[k], n)) for k in here for n in names),
            "discarded": ended and run_splits._EARLY is None,
        }}))
    """, tmp_path)
    assert out == {"started": True, "prefetching": True, "taken": True, "released": True, "from_helper": True,
                   "equal": True, "discarded": True}


_EARLY_SCRIPT = textwrap.dedent("""
    import atexit, sys
    from learnact.experiment import run_splits
    calls = []
    real = run_splits.start_early
    def spy():
        calls.append(real())
    run_splits.start_early = spy
    atexit.register(lambda: print("early helper started:", calls, "left:", run_splits._EARLY is not None))
    sys.argv = ["learnact", "run", *sys.argv[1:], "--no-report", "--quiet"]
    from learnact.cli import console
    console()
""")


@needs_two_cores
@pytest.mark.parametrize("case", ["runs", "refused"])
def test_learnact_run_starts_the_data_helper_before_reading_the_study(tmp_path, case):
    config = tmp_path / "study.json"
    config.write_text(json.dumps(STUDY if case == "runs" else {**STUDY, "seeds": "one"}))
    proc = subprocess.run([sys.executable, "-c", _EARLY_SCRIPT, "--config", str(config), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert "early helper started: [True] left: False" in proc.stdout, proc.stdout + proc.stderr
    if case == "runs":
        assert proc.returncode == 0, proc.stderr
        assert len(list((tmp_path / "out" / "runs").iterdir())) == 4
    else:  # a refused study: its one-line error, and the helper ended with it
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
