"""How a ``learnact`` command ends: exit codes, one-line errors, interrupts, internal errors.

Exit codes:

* ``0`` success (also ``--help``, ``--version`` and a bare ``learnact``, which prints help);
* ``2`` a usage error (an unknown option or command, a missing or malformed
  value), or bad input: a
  :class:`~learnact.exceptions.LearnactError`, a ``ValueError`` / ``TypeError``
  naming the bad value, or an OS error a user can fix (disk full, read-only file
  system, name too long, permission denied, a file in the way); one line
  ``learnact: error: ...`` naming the problem and the fix;
* ``1`` an internal error (a bug): one line naming the failing run, where the
  traceback was logged (the study's ``study.log``) and ``--debug``;
* ``130`` Ctrl-C, ``143`` SIGTERM: one line, finished runs are kept.

A usage error is one line too, ``learnact: error: <Click's message>; see
'learnact CMD --help'``, in place of Typer's framed usage block: the command's
and the group's argument parsing (:class:`LearnactCommand`,
:class:`LearnactGroup`) print it and exit 2. Click's errors are recognised by
their shape (an ``exit_code`` of 2 and a ``format_message``), so this works with
the vendored Click of Typer >= 0.26 and with the real Click of older versions
alike, and this module never imports Click. ``--debug`` (or
``LEARNACT_DEBUG=1``) prints the traceback of any other error before its line.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from typer.core import TyperCommand, TyperGroup

from .._checks import closest
from ..exceptions import LearnactError

__all__ = ["DEBUG_ENV", "Interrupted", "LearnactCommand", "LearnactGroup", "Terminated", "install_signal_handlers",
           "run_cli", "state"]

#: Environment variable that turns on ``--debug``.
DEBUG_ENV = "LEARNACT_DEBUG"

_USER_ERRORS = (LearnactError, ValueError, TypeError)

#: OS errors a user can fix, and how (the errno's text and the path are printed before it).
_OS_FIXES = {
    errno.ENOSPC: "free space on that disk or choose another folder",
    errno.EDQUOT: "free space within your disk quota or choose another folder",
    errno.EROFS: "that file system is read-only; choose a writable folder (e.g. --out DIR)",
    errno.ENAMETOOLONG: "a file name is too long for the file system; use a shorter --out path or shorter study "
                        "and variant names",
    errno.EEXIST: "something is in the way there; choose another path or move it away",
    errno.EACCES: "permission denied; choose a folder you can write to (e.g. --out DIR) or fix its permissions",
    errno.EPERM: "operation not permitted there; choose a folder you can write to (e.g. --out DIR)",
    errno.ENOTDIR: "a part of that path is a file, not a folder; choose another path",
    errno.EISDIR: "that is a folder where a file is needed; give a file path",
    errno.ENOENT: "no such file or folder; check the path",
}


@dataclass
class _State:
    """What the running command told the error handling (reset by every :func:`run_cli`)."""

    debug: bool = False
    #: The folder (or file) the command writes; named by an OS error that names no file.
    writes_to: Path | None = None
    #: The study log, where an internal error's traceback goes (``learnact run``).
    log_file: Path | None = None
    #: What Ctrl-C and SIGTERM print (``learnact run``: finished runs are kept).
    interrupted: str = "interrupted"
    #: Said after the fix of a full disk (``learnact run``: finished runs are kept, rerun to resume); a command
    #: that writes one file (``predict --out``) has nothing to resume.
    after_full_disk: str = ""
    #: SIGTERM arrived (Typer may have turned it into an exit code already).
    terminated: bool = False

    def reset(self) -> None:
        self.debug = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
        self.writes_to = self.log_file = None
        self.interrupted = "interrupted"
        self.after_full_disk = ""
        self.terminated = False


state = _State()


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM reached a command; ``signum`` says which.

    A ``BaseException`` but no ``KeyboardInterrupt``, so Typer passes it on
    untouched (it turns a ``KeyboardInterrupt`` into a silent exit).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the handler :func:`install_signal_handlers` installs.

    A ``KeyboardInterrupt``, so everything that cleans up after Ctrl-C (the
    runner cancels pending tasks and logs the interruption, pools stop their
    workers) does the same after SIGTERM.
    """

    signum = signal.SIGTERM


def _is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of Click's usage errors (Typer's vendored Click or the real one): by its shape."""
    return getattr(exc, "exit_code", None) == 2 and callable(getattr(exc, "format_message", None))


def _usage_exit(exc: Any, ctx: Any) -> NoReturn:
    """Print the usage error ``exc`` as one line naming the command's help, and exit 2 (``SystemExit``).

    ``ctx`` is the context of the command whose arguments were parsed: Click's
    parser raises some errors (an option missing its value) without one.
    """
    context = getattr(exc, "ctx", None) or ctx
    command = getattr(context, "command_path", "") or "learnact"
    message = _one_line(_usage_text(exc)).rstrip(".") or "invalid usage"
    _say(f"error: {message}; see '{command} --help'")
    raise SystemExit(2) from None


def _usage_text(exc: Any) -> str:
    """The text of a usage error; for an unknown option, a suggestion only where it is close.

    Click offers options whose ratio counts the shared ``--``, so ``--bogus`` got ``(Possible options:
    --out)``; here the names without dashes are compared, as :func:`~learnact._checks.did_you_mean` does.
    """
    possibilities = getattr(exc, "possibilities", None)
    option = getattr(exc, "option_name", None)
    if type(exc).__name__ != "NoSuchOption" or not isinstance(option, str) or not isinstance(
            getattr(exc, "message", None), str):
        return str(exc.format_message())
    bare = {str(p).lstrip("-"): str(p) for p in possibilities or ()}
    close = closest(option.lstrip("-"), bare)
    return str(exc.message).rstrip(".") + (f" (did you mean {bare[close]!r}?)" if close is not None else "")


@contextmanager
def _usage_in_one_line(ctx: Any) -> Iterator[None]:
    """Within the block, a usage error of Click's ends the command as one line (:func:`_usage_exit`); any other
    exception passes unchanged."""
    try:
        yield
    except Exception as exc:
        if _is_usage_error(exc):
            _usage_exit(exc, ctx)
        raise


def _flags_without_a_type(params: list[Any]) -> list[Any]:
    """``params`` with each flag's type hidden from the help: a flag takes no value.

    Typer 0.29 shows every option's type in the help, a flag's too: ``--force <bool>`` read as an option that
    wants a value (``--force true``, a usage error). An empty metavar shows nothing there, as older releases
    did; the parsing is the same.
    """
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", None) is None:
            param.metavar = ""
    return params


class LearnactGroup(TyperGroup):
    """The app's command group: a usage error is one line (:func:`_usage_exit`), and a Ctrl-C or SIGTERM inside
    any command becomes :class:`Interrupted`; no flag shows a type in the help (:func:`_flags_without_a_type`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_a_type(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with _usage_in_one_line(ctx):  # an unknown option of the group itself: learnact --bogus
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            with _usage_in_one_line(ctx):  # an unknown command, or one raised by a command's own checks
                return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise Interrupted(int(getattr(exc, "signum", signal.SIGINT))) from exc


class LearnactCommand(TyperCommand):
    """A command whose usage errors (an unknown option, a missing or malformed value) are one line
    (:func:`_usage_exit`) naming ``learnact CMD --help``; no flag shows a type in its help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_a_type(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with _usage_in_one_line(ctx):
            return super().parse_args(ctx, args)


def install_signal_handlers() -> None:
    """SIGTERM raises :class:`Terminated` in this process, as Ctrl-C raises ``KeyboardInterrupt``.

    A process forked from this one (a training worker) that gets SIGTERM dies of
    it as it would without the handler: quietly, at once.
    """
    owner = os.getpid()

    def on_term(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        state.terminated = True
        raise Terminated()

    signal.signal(signal.SIGTERM, on_term)
    _hold_signals_while_forking()


_FORK_HOOKS: list[bool] = []


def _hold_signals_while_forking() -> None:
    """Hold SIGTERM and SIGINT back while the process forks, from the first fork hook to the last (once).

    Python runs hooks around ``fork`` (logging releases its lock in one); a
    signal whose handler raised in such a hook printed "Exception ignored
    in ... Traceback" to stderr and the exception was lost. Registered last,
    this runs first before a fork and last after it, in parent and child, so a
    signal that arrives meanwhile is delivered after the hooks, in the code
    that called ``fork``. The hooks call the C library's ``pthread_sigmask``
    through ctypes: Python's own (``signal.pthread_sigmask``) runs the pending
    handlers before it returns, that is inside the hook, which the kill test
    caught once. Signals that other code blocked before this registration are
    left as they are.
    """
    if _FORK_HOOKS or not hasattr(signal, "pthread_sigmask") or not hasattr(os, "register_at_fork"):
        return
    _FORK_HOOKS.append(True)
    held = {signal.SIGTERM, signal.SIGINT} - set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
    hooks = _c_sigmask_hooks(held) if held else None
    if hooks is not None:
        os.register_at_fork(before=hooks[0], after_in_parent=hooks[1], after_in_child=hooks[1])


def _c_sigmask_hooks(held: set[signal.Signals]) -> tuple[Callable[[], object], Callable[[], object]] | None:
    """Two C-level callables (no Python line runs in them) blocking and unblocking ``held``, or ``None``."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mask = ctypes.create_string_buffer(1024)  # larger than any platform's sigset_t
        if libc.sigemptyset(mask) != 0 or any(libc.sigaddset(mask, int(s)) != 0 for s in held):
            return None
        sigmask = libc.pthread_sigmask
    except (OSError, AttributeError, ImportError):  # no C library to call: no hooks, as before they existed
        return None
    hooks = (functools.partial(sigmask, int(signal.SIG_BLOCK), mask, None),
             functools.partial(sigmask, int(signal.SIG_UNBLOCK), mask, None))
    hooks[0]()  # a trial: the mask must read back as blocking exactly these
    ok = held <= set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
    hooks[1]()
    return hooks if ok and not held & set(signal.pthread_sigmask(signal.SIG_BLOCK, [])) else None


def _one_line(text: str, limit: int = 0) -> str:
    text = " ".join(text.split())
    return text if not limit or len(text) <= limit else text[:limit - 3] + "..."


def _say(text: str) -> None:
    print(f"learnact: {text}", file=sys.stderr, flush=True)


def _os_message(exc: OSError) -> str | None:
    """One line for an OS error a user can fix, or ``None``."""
    fix = _OS_FIXES.get(exc.errno) if exc.errno is not None else None
    if fix is None:
        return None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and state.after_full_disk:
        fix = f"{fix}; {state.after_full_disk}"
    what = exc.strerror or os.strerror(exc.errno)  # type: ignore[arg-type]
    names = " -> ".join(repr(str(name)) for name in (exc.filename, exc.filename2) if name is not None)
    if names:
        return f"{what}: {names}; {fix}"
    if state.writes_to is not None:
        return f"{what} (writing to {str(state.writes_to)!r}); {fix}"
    return f"{what}; {fix}"


#: OS errors that, anywhere in an exception's chain, explain it (writing a figure to a full disk can end
#: in an error of the plotting library while it cleans up).
_ENVIRONMENT = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return seen


def _user_message(exc: BaseException) -> str | None:
    """The one line for a user error, or ``None`` for an internal one."""
    if isinstance(exc, LearnactError) and str(exc):  # learnact's own message already names the path and the fix
        return _one_line(str(exc))
    for link in _chain(exc)[1:]:
        if isinstance(link, OSError) and link.errno in _ENVIRONMENT:
            return _os_message(link)
    if isinstance(exc, OSError):
        message = _os_message(exc)
        if message is not None:
            return message
        if exc.errno is None and str(exc):  # raised by learnact with a message of its own
            return _one_line(str(exc))
        return None
    if isinstance(exc, _USER_ERRORS):
        return _one_line(str(exc)) or type(exc).__name__
    return None


def _internal(exc: BaseException) -> str:
    """The one line for an internal error; its traceback goes to the study log where there is one."""
    from ..experiment.runner import RunFailedError, append_to_log

    what = f"{type(exc).__name__}: {_one_line(str(exc), 300)}" if str(exc) else type(exc).__name__
    where = ""
    log = state.log_file
    if isinstance(exc, RunFailedError):  # the runner logged it, with the run ids
        cause = exc.__cause__ or exc
        what = f"{type(cause).__name__}: {_one_line(str(cause), 300)}" if str(cause) else type(cause).__name__
        where = f" in {exc.describe_runs()}"
        log = exc.log_file
    elif log is not None and log.is_file():
        try:
            append_to_log(log, f"internal error: {what}\n{_traceback(exc)}")
        except OSError:
            log = None
    else:
        log = None
    tail = (f"the traceback is in {log}" if log is not None else "rerun with --debug to see the traceback")
    return f"internal error{where} ({what}); {tail}; please report it"


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # as sys.exit("text") would
    return 1


def run_cli(app: Callable[..., object], argv: list[str] | None = None) -> int:
    """Run the Typer ``app`` on ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Usage errors and other errors are printed as one line (see the module's
    docstring for the exit codes).
    """
    state.reset()
    try:
        app(args=argv, prog_name="learnact")
    except SystemExit as exc:  # Typer's standalone mode always ends with one (usage errors: 2)
        if state.terminated:  # SIGTERM outside a command's code (while parsing): Typer made it an exit
            _say(state.interrupted)
            return 128 + signal.SIGTERM
        return _exit_code(exc.code)
    except (Interrupted, KeyboardInterrupt) as exc:
        if state.debug:
            print(_traceback(exc), file=sys.stderr)
        _say(state.interrupted)
        return 128 + int(getattr(exc, "signum", signal.SIGINT))
    except Exception as exc:
        if state.debug:
            print(_traceback(exc), file=sys.stderr)
        message = _user_message(exc)
        if message is not None:
            _say(f"error: {message}")
            return 2
        _say(_internal(exc))
        return 1
    return 0
