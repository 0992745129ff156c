"""One OpenBLAS thread in learnact's own processes (private; a leaf module: no numpy, nothing of learnact).

Each OpenBLAS library (numpy's and scipy's wheels each bundle one) starts a
pool of threads, one per core, when it loads, and those threads spin for
about 0.12 s of CPU before they sleep; a process forked from one that has
the library starts the pool again at its first BLAS call. learnact's numpy
arrays are small (metrics, statistics, figures, a family's initial fit): its
BLAS calls gain nothing from threads, and OpenBLAS splits no product of
their size, so results do not depend on the setting. On 2 cores the spinning
took CPU from the work beside it: the training helper importing scikit-learn
beside the import of torch, the report's fork server beside the leaderboard,
one report worker beside the other (2-3% of a report's CPU time).

:func:`one_thread` sets ``OPENBLAS_NUM_THREADS=1`` for the process and the
processes it starts, unless the user set the variable. The ``learnact``
command calls it first thing; the report's fork server calls it in its
preload (:mod:`learnact.reporting._server_blas`), so a report built from
Python gets it too. A report helper, a fork of a process whose numpy is
loaded, calls :func:`one_thread_loaded`, which tells the running libraries.
A library user's own process is left alone.
"""

from __future__ import annotations

import os
import sys

__all__ = ["VARIABLE", "one_thread", "one_thread_loaded"]

VARIABLE = "OPENBLAS_NUM_THREADS"
"""The environment variable OpenBLAS reads for its thread count when it loads."""


def one_thread() -> bool:
    """Set :data:`VARIABLE` to 1 unless the user set it or numpy is loaded already (its OpenBLAS read it).

    Returns:
        Whether it was set here.
    """
    if "numpy" in sys.modules or VARIABLE in os.environ:
        return False
    os.environ[VARIABLE] = "1"
    return True


def one_thread_loaded() -> bool:
    """:func:`one_thread` for a process whose numpy is loaded already (a fork of a script's process: the report's
    helper): set :data:`VARIABLE` to 1 for the processes it starts and tell the running OpenBLAS libraries
    (threadpoolctl, which scikit-learn brings), unless the user set the variable.

    Returns:
        Whether it was set here.
    """
    if VARIABLE in os.environ:
        return False
    os.environ[VARIABLE] = "1"
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        threadpool_limits(1, user_api="blas")
    except Exception:  # noqa: BLE001 - no threadpoolctl, or a library it cannot handle: only a little CPU lost
        pass
    return True
