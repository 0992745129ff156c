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
started it. When done it creates the file named by
:data:`~learnact.reporting.parallel.DONE_ENV`: the
command then knows the server is ready; where it is not by the time the
report starts (other programs kept every core busy), the command stops it
and starts an ordinary one (:func:`~learnact.reporting.parallel.map_in_processes`).
The server also ends with the command that started it (the kernel kills
it), so a command that stops early (bad data) is not held open by a
warm-up still waiting for an idle core. Imported anywhere else, it does
nothing.
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path

from .._processes import set_parent_death_signal
from ._fork_server import in_fork_server
from .parallel import DONE_ENV, PRELOAD, thread_priorities

__all__ = ["NICE", "WARMED"]

NICE = 19
"""The warm-up thread's nice value: the lowest priority."""


def _warm_up() -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)  # this thread only (Linux)
    for name in PRELOAD:
        if name not in (__name__, "learnact.reporting._fork_server"):
            importlib.import_module(name)
    from .saving import prime

    prime()


def _run() -> bool:
    set_parent_death_signal()  # the server ends with the command, even halfway through its warm-up
    failed: list[BaseException] = []

    def work() -> None:
        try:
            _warm_up()
        except BaseException as exc:  # the server still serves: a worker then imports what it needs itself
            failed.append(exc)

    thread = threading.Thread(target=work, name="learnact-report-warm-up", daemon=True)
    thread.start()
    thread.join()  # the server forks no worker while another thread runs
    done = os.environ.pop(DONE_ENV, "")
    if done:
        Path(done).touch()  # ready, warm-up failed or not: the server serves either way
    return not failed


WARMED = _run() if in_fork_server() and thread_priorities() else False
"""Whether this process is the report's fork server and warmed up at the lowest priority."""
