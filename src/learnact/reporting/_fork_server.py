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
Imported anywhere else (any other process; a worker forked from a server that
did not preload it), it does nothing. A worker forked from a server that did
inherits the handler, which never runs there: such workers end with
``os._exit`` already.
"""

from __future__ import annotations

import atexit
import os
import sys
from types import FrameType

__all__ = ["INSTALLED"]


def _in_fork_server() -> bool:
    """Whether this import runs in :func:`multiprocessing.forkserver.main`'s preload: that function is on the
    stack, but not the code a worker forked from it runs its task in (whose stack still holds ``main``)."""
    from multiprocessing import forkserver

    codes = set()
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        codes.add(frame.f_code)
        frame = frame.f_back
    serve_one = getattr(forkserver, "_serve_one", None)  # private (Python 3.8-3.14); without it, main alone
    return forkserver.main.__code__ in codes and (serve_one is None or serve_one.__code__ not in codes)


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
