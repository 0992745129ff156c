"""Executors: this process, a process pool and a Dask cluster give the same results (issue 4)."""

from __future__ import annotations

import socket
import sys

import pandas as pd
import pytest
from experiment_helpers import result_table, tiny_raw

from learnact.cli.app import app
from learnact.cli.errors import run_cli
from learnact.exceptions import ConfigError
from learnact.experiment.executors import InProcessExecutor, open_executor
from learnact.experiment.runner import LOG_FILE, run_study


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    """The reference: the tiny study trained in this process."""
    from learnact.experiment.grid import study_from_dict

    folder = tmp_path_factory.mktemp("local") / "study"
    run_study(study_from_dict(tiny_raw(n_seeds=3)), folder)
    return result_table(folder)


@pytest.fixture()
def study_file(tmp_path):
    import json

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_raw(n_seeds=3)))
    return path


def test_in_process_executor():
    ex = InProcessExecutor()
    assert ex.submit(lambda x: x + 1, 1).result() == 2
    failed = ex.submit(lambda: 1 / 0)
    assert failed.done() and isinstance(failed.exception(), ZeroDivisionError)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(print)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "ray"}, "unknown executor 'ray'; valid: local, processes, dask"),
        ({"kind": "local", "workers": 2}, "--workers applies to --executor processes, got --executor local"),
        ({"kind": "local", "scheduler": "tcp://x:1"}, "--scheduler applies to --executor dask"),
        ({"kind": "dask"}, "--executor dask needs --scheduler ADDRESS"),
        ({"kind": "processes", "workers": 0}, "--workers must be an integer >= 1, got 0"),
        ({"kind": "dask", "scheduler": "tcp://x:1", "connect_timeout_s": 0}, "--connect-timeout must be > 0"),
    ],
)
def test_option_errors(kwargs, message):
    with pytest.raises(ConfigError) as info:
        with open_executor(**kwargs):
            pass
    assert message in str(info.value)


def test_process_pool_gives_the_same_results(tmp_path, local_table):
    from learnact.experiment.grid import study_from_dict

    folder = tmp_path / "study"
    with open_executor("processes", workers=2) as pool:
        assert pool.n_slots == 2 and pool.max_in_flight == 4
        result = run_study(study_from_dict(tiny_raw(n_seeds=3)), folder, executor=pool)
    assert result.n_trained == 6
    assert "executor processes: 2 workers" in (folder / LOG_FILE).read_text()
    pd.testing.assert_frame_equal(result_table(folder), local_table)


_SERVER_ENDS_AT_ONCE = """
from learnact.experiment.executors import open_executor
with open_executor("processes", workers=1) as pool:
    print(pool.executor.submit(eval, "'learnact.reporting._fork_server' in __import__('sys').modules").result())
"""


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="the pool's workers are spawned on this platform: no fork server")
def test_the_process_pools_fork_server_ends_without_its_teardown():
    """The pool's fork server holds the command's output; like the report's, it ends with os._exit instead of
    tearing torch down (test_parallel's teardown test checks that mechanism): its workers, forked from it, find the
    module that does it imported. In a fresh interpreter, since a fork server starts once per process."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", _SERVER_ENDS_AT_ONCE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.slow  # a Dask cluster giving the local results: also test_plugins.py's Dask test (CI runs that one)
def test_dask_cluster_gives_the_same_results(tmp_path, study_file, local_table, capsys):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        folder = tmp_path / "study"
        rc = run_cli(app, ["run", "--config", str(study_file), "--out", str(folder), "--quiet", "--no-report",
                           "--executor", "dask", "--scheduler", cluster.scheduler_address])
    assert rc == 0, capsys.readouterr().err
    log = (folder / LOG_FILE).read_text()
    assert f"executor dask at {cluster.scheduler_address}: 2 workers, 2 threads" in log
    pd.testing.assert_frame_equal(result_table(folder), local_table)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_with_a_clear_message_and_writes_nothing(tmp_path, study_file, capsys):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    rc = run_cli(app, ["run", "--config", str(study_file), "--out", str(tmp_path / "out"), "--executor", "dask",
                       "--scheduler", address, "--connect-timeout", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"learnact: error: cannot reach the Dask scheduler at {address!r} within 1 s (")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_dask_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"needs Dask distributed, which is not installed; install it with "
                                          r"`pip install 'learnact\[cluster\]'`"):
        with open_executor("dask", scheduler="tcp://127.0.0.1:8786"):
            pass


def test_workers_past_four_per_core_and_an_infinite_timeout_are_refused(capsys, tmp_path):
    from learnact._processes import available_cores

    most = 4 * available_cores()  # the rule --threads has: 4 per core this process may use
    for workers in (most + 1, 3_000_000_000):  # the second had been an OverflowError (an internal error)
        with pytest.raises(ConfigError, match=rf"--workers {workers} is more than learnact takes \(at most {most}, 4 "
                                              rf"per core of the {most // 4}"):
            with open_executor("processes", workers=workers):
                pass
    with open_executor("processes", workers=most) as pool:
        assert pool.n_slots == most
    for timeout in (float("inf"), float("nan"), 0.0):
        with pytest.raises(ConfigError, match="--connect-timeout must be > 0 seconds and finite"):
            with open_executor("dask", scheduler="tcp://127.0.0.1:1", connect_timeout_s=timeout):
                pass
    rc = run_cli(app, ["run", "--preset", "headline", "--out", str(tmp_path / "s"), "--executor", "processes",
                       "--workers", "3000000000", "-q", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--workers 3000000000 is more than learnact takes" in err, err
    assert not (tmp_path / "s").exists()
