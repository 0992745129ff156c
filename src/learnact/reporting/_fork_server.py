"""The report's fork server ends without tearing its interpreter down (private; imported through its preload).

The fork server (:mod:`.parallel`) is a Python process that imported the
report code, matplotlib and often PyTorch. It ends when the process it serves
ends; tearing such an interpreter down (freeing every module's objects one by
one) took 0.3-0.8 s. It holds the command's standard output and error (it
inherited them, and its workers write their warnings there), so a caller that
reads the output to its end (``learnact run | tee log``, a CI log, a
benchmark) waited that long after ``learnact`` itself had exited.

Imported by that server (last in its preload list), this module registers an
exit handler that flushes the streams and ends the process at once, as
:func:`learnact.cli.app.console` ends ``learnact`` itself. The server has
nothing left to write at that point: its workers are gone with the command.
Imported anywhere else (a worker forked from the server inherits it already
imported; any other process that imports it), it does nothing.
"""

from __future__ import annotations

import atexit
import os
import sys
from types import FrameType

__all__ = ["INSTALLED"]


def _in_fork_server() -> bool:
    """Whether this import runs inside :func:`multiprocessing.forkserver.main` (its preload)."""
    from multiprocessing import forkserver

    frame: FrameType | None = sys._getframe()
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or None
            pass
    os._exit(0)


INSTALLED = _in_fork_server()
"""Whether this process is the report's fork server and ends without its teardown."""

if INSTALLED:
    atexit.register(_exit_now)
