"""The ``learnact`` Typer app and the entry point."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer

from .._blas import one_thread
from .errors import LearnactCommand, LearnactGroup, install_signal_handlers, run_cli, state

__all__ = ["app", "ends_after_command", "main"]


class _App(typer.Typer):
    """``typer.Typer`` whose commands are :class:`~.errors.LearnactCommand` unless told otherwise."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or LearnactCommand, **kwargs)


app = _App(
    name="learnact",
    cls=LearnactGroup,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_line() -> str:
    """``learnact X (Python X, torch X, typer X)``: what a bug report needs (torch is not imported)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    try:
        torch = version("torch")
    except PackageNotFoundError:  # pragma: no cover - learnact needs torch to install
        torch = "not installed"
    return f"learnact {__version__} (Python {platform.python_version()}, torch {torch}, typer {typer.__version__})"


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
    debug: bool = typer.Option(
        False, "--debug", help="Print the full traceback of any error (also: LEARNACT_DEBUG=1)."),
) -> None:
    """Learn activation functions: gated mixtures, multi-seed studies, report packs."""
    if version:
        print(_version_line())
        raise typer.Exit()
    if debug:
        state.debug = True
    if ctx.invoked_subcommand is None:  # a bare `learnact`: what it can do, and exit 0
        print(ctx.get_help())
        raise typer.Exit()


# Each command lives in its own module and registers itself on ``app``.
from . import compare_cmd, init_cmd, list_cmd, predict_cmd, report_cmd, run_cmd  # noqa: E402,F401


def _warnings_in_one_line() -> None:
    """Print each Python warning as one line, ``learnact: warning: <message>``, as errors are printed.

    Python's own format adds the file, line and source line of the code that
    warned, a second line a user cannot act on. ``--debug`` (or
    ``LEARNACT_DEBUG=1``) keeps it.
    """
    import warnings

    python_format = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if state.debug:
            python_format(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).split()).removeprefix("learnact: ")
        kind = "" if category is UserWarning else f"{category.__name__}: "
        try:
            print(f"learnact: warning: {kind}{text}", file=file if file is not None else sys.stderr, flush=True)
        except (OSError, ValueError):  # a closed stream: as Python's own format, nothing to say it on
            pass

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> None:
    """Run a command (``argv``, default ``sys.argv[1:]``) and raise ``SystemExit`` with its exit code.

    SIGTERM ends a command like Ctrl-C does (exit 143); then :func:`run_cli`.
    """
    install_signal_handlers()
    _warnings_in_one_line()
    logging.raiseExceptions = False  # a log file that cannot be written (disk full) is no traceback
    sys.exit(run_cli(app, argv))


_CONSOLE = False
"""Whether this process is the ``learnact`` console script, which ends after its one command."""


def ends_after_command() -> bool:
    """Whether this process ends once its command is done (the console script, not :func:`main` called from
    Python): what the command holds need not be freed before then."""
    return _CONSOLE


def console() -> None:
    """The ``learnact`` console script (and ``python -m learnact``): :func:`main`, then a quick exit.

    A command that trained or reported holds torch, models and thousands of
    objects; tearing the interpreter down freed them one by one, 0.7 s after
    the last line of a ``learnact run``. Here the exit handlers run
    (``atexit``: logging, multiprocessing, temporary folders), other threads
    are waited for, the streams are flushed, and the process ends without the
    teardown, with :func:`main`'s exit code. First, before anything loads numpy,
    one OpenBLAS thread for this process and its helpers (:mod:`learnact._blas`).
    """
    global _CONSOLE
    _CONSOLE = True
    one_thread()
    try:
        main()
    except SystemExit as stop:
        code = stop.code
    else:  # pragma: no cover - main always raises SystemExit
        code = 0
    if code is None:
        code = 0
    elif not isinstance(code, int):  # as the interpreter treats sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    _exit_without_teardown(code)


def _exit_without_teardown(code: int) -> None:
    import atexit
    import os
    import threading

    for thread in threading.enumerate():  # as the interpreter does before exiting: non-daemon threads finish
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # logging.shutdown, multiprocessing's children, weakref finalizers
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (learnact list | head): nothing more to say
            pass
    os._exit(code)
