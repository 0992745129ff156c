"""The report's fork server warms up at the lowest priority, then serves at its own (private; a preload module).

``learnact run`` starts the report workers' fork server as it starts
(:func:`~learnact.reporting.parallel.warm_up` with ``early=True``), long
before the report: its imports (pandas, matplotlib, the report's code) and
one figure drawn in memory (:func:`~learnact.reporting.saving.prime`: the
PDF backend, the fonts' shared subsets, PDFium) take about 1.5 s of CPU,
and on 2 cores the process that trains leaves a core idle for about that
long while it starts (its own imports, PyTorch's). That work must never
take a core from the training or from the process that trains, so it runs
at the lowest priority (nice 19): it gets a core only where one is idle.

Imported by that server (first in its preload list), this module does the
work in a thread whose priority it lowers (Linux gives each thread its own
nice value) and waits for it. The server's own thread keeps its priority,
so the workers it forks later draw at the priority of the command that
started it. Imported anywhere else, it does nothing.
"""

from __future__ import annotations

import importlib
import os
import threading

from ._fork_server import in_fork_server

__all__ = ["NICE", "WARMED", "supported"]

NICE = 19
"""The warm-up thread's nice value: the lowest priority."""


def supported() -> bool:
    """Whether a thread's priority can be set apart from its process's (Linux), which an early warm-up needs."""
    return hasattr(os, "setpriority") and hasattr(threading, "get_native_id") and os.uname().sysname == "Linux"


def _warm_up() -> None:
    from .parallel import PRELOAD

    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)  # this thread only (Linux)
    for name in PRELOAD:
        if name not in (__name__, "learnact.reporting._fork_server"):
            importlib.import_module(name)
    from .saving import prime

    prime()


def _run() -> bool:
    failed: list[BaseException] = []

    def work() -> None:
        try:
            _warm_up()
        except BaseException as exc:  # the server still serves: a worker then imports what it needs itself
            failed.append(exc)

    thread = threading.Thread(target=work, name="learnact-report-warm-up", daemon=True)
    thread.start()
    thread.join()  # the server forks no worker while another thread runs
    return not failed


WARMED = _run() if in_fork_server() and supported() else False
"""Whether this process is the report's fork server and warmed up at the lowest priority."""
