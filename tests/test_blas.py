"""One OpenBLAS thread in learnact's own processes (learnact._blas): set before numpy loads, never over the user's.

Each case runs in a fresh interpreter: this one has numpy (and its OpenBLAS threads) loaded already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from learnact._blas import VARIABLE

_PROBE = textwrap.dedent("""
    import json, os, sys
    if sys.argv[1] == "numpy-first":
        import numpy
    from learnact._blas import one_thread
    was_set = one_thread()
    import numpy, threadpoolctl
    numpy.ones((64, 64)) @ numpy.ones((64, 64))  # a BLAS call: the library is loaded and in use
    threads = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "openblas"]
    print(json.dumps([was_set, os.environ.get({variable!r}), threads]))
""").replace("{variable!r}", repr(VARIABLE))


#: What OpenBLAS reads for its thread count, in its order: none inherited from the test's own process.
_THREAD_VARIABLES = (VARIABLE, "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def _probe(mode: str, user_value: str | None) -> tuple[bool, str | None, list[int]]:
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARIABLES}
    if user_value is not None:
        env[VARIABLE] = user_value
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    was_set, value, threads = json.loads(done.stdout.strip().splitlines()[-1])
    return was_set, value, threads


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS runs one thread on one core anyway")
def test_before_numpy_it_gives_openblas_one_thread():
    was_set, value, threads = _probe("learnact-first", None)
    assert was_set and value == "1"
    assert threads and all(n == 1 for n in threads), threads  # without it, one thread per core


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS runs one thread on one core anyway")
def test_after_numpy_it_changes_nothing():
    # numpy's OpenBLAS read the environment when it loaded: setting the variable now would only mislead
    was_set, value, threads = _probe("numpy-first", None)
    assert not was_set and value is None
    assert any(n > 1 for n in threads), threads


def test_the_users_setting_is_kept():
    was_set, value, threads = _probe("learnact-first", "2")
    assert not was_set and value == "2"
    assert all(n == min(2, os.cpu_count() or 1) for n in threads), threads


def test_the_command_line_module_loads_no_numpy():
    # console() calls one_thread() after importing the command line: that import must leave numpy unloaded
    done = subprocess.run([sys.executable, "-c", "import sys, learnact.cli.app; print('numpy' in sys.modules)"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


_INITIAL_FITS = textwrap.dedent("""
    import hashlib, json
    from learnact.model.activations import families as f
    fits = ([f._rational_init(m, n) for m in range(1, 8) for n in range(0, 7)]
            + [f._kernel_init(size, -3.0, 3.0, gamma) for size in (2, 5, 20, 50) for gamma in (0.5, 5.0)])
    print(hashlib.sha256(json.dumps(fits).encode()).hexdigest())
""")


def test_the_families_initial_fits_do_not_depend_on_the_thread_count():
    # the rational and kernel families start from numpy least-squares fits: the command's one OpenBLAS thread must
    # give the values a library user's process (one thread per core) gets, or the two would train differently
    digests = []
    for value in (None, "1"):
        env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARIABLES}
        if value is not None:
            env[VARIABLE] = value
        done = subprocess.run([sys.executable, "-c", _INITIAL_FITS], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        digests.append(done.stdout.strip())
    assert digests[0] == digests[1]
