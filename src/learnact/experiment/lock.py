"""An exclusive lock on a study folder, so two processes never write one study.

The lock is an OS file lock (``flock`` on POSIX, ``msvcrt.locking`` on
Windows) on ``<study>/.lock``. The operating system releases it when the
holder exits, however it exits (``kill -9`` included), so a stale lock file
never blocks a rerun. The file holds the holder's pid, host and start time,
for the message the second process prints.

Processes forked while the lock is held (the vectorised engine's workers and
their helpers) close their copy of the lock's file descriptor right after the
fork (:func:`os.register_at_fork`): an ``flock`` belongs to the open file,
which a forked child shares, so a worker that outlived its parent would
otherwise keep the study locked and refuse a rerun.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..exceptions import RunStoreError, StudyInUseError
from ..store import LOCK_FILE, LOCK_TEXT

__all__ = ["LOCK_FILE", "study_lock"]

#: File descriptors of the locks this process holds (closed in forked children).
_HELD: set[int] = set()


def _close_in_child() -> None:
    """After ``fork``, in the child: drop the parent's locks (the parent keeps them)."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:  # pragma: no cover - already closed
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_close_in_child)


def _try_lock(fd: int) -> bool:
    """Take the lock without waiting; ``False`` if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def study_lock(folder: Path) -> Iterator[Path]:
    """Hold the lock on an existing study folder for the ``with`` block.

    Args:
        folder: The study folder (must exist).

    Yields:
        The lock file's path.

    Raises:
        StudyInUseError: Another process holds the lock; the message names it.
        RunStoreError: ``.lock`` is not a lock file learnact wrote (a user's file, a link, a folder): it is
            never written through, and left as it was.
    """
    path = Path(folder) / LOCK_FILE
    mine = f"; it was left alone: move it out of {str(folder)!r} (or give another --out folder)"
    try:  # never through a link: O_NOFOLLOW refuses one
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
            kind = "a folder" if path.is_dir() and not path.is_symlink() else "a link or not a regular file"
            raise RunStoreError(f"{str(path)!r} is {kind}, in the way where learnact writes the study's lock "
                                f"file{mine}") from None
        raise
    _HELD.add(fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunStoreError(f"{str(path)!r} is not a regular file, in the way where learnact writes the "
                                f"study's lock file{mine}")
        if not _try_lock(fd):
            holder = os.read(fd, 200).decode(errors="replace").strip()
            who = f" ({holder})" if holder else ""
            raise StudyInUseError(
                f"study folder {str(folder)!r} is in use by another learnact process{who}; wait for it to "
                f"finish, or pass another --out folder")
        text = os.read(fd, 1000).decode("utf-8", "replace")
        if LOCK_TEXT.fullmatch(text) is None:
            raise RunStoreError(f"{str(path)!r} holds what learnact did not write (its lock file holds \"pid N on "
                                f"HOST, since TIME\"){mine}")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                 .encode())
        yield path
    finally:
        if fd in _HELD:  # in a forked child that unwinds here the descriptor was closed already
            _HELD.discard(fd)
            os.close(fd)  # releases the lock; the file stays (removing it would race a waiting process)
