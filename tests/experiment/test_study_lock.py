"""The study-folder lock: exclusive, released on exit however the holder exits (issue 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from learnact.exceptions import StudyInUseError
from learnact.experiment.lock import LOCK_FILE, study_lock

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from learnact.experiment.lock import study_lock
    with study_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(600)
""")


def test_second_holder_is_refused_with_a_clear_message(tmp_path):
    with study_lock(tmp_path):
        with pytest.raises(StudyInUseError) as info:
            with study_lock(tmp_path):
                pass
    text = str(info.value)
    assert f"study folder {str(tmp_path)!r} is in use by another learnact process (pid {os.getpid()} on" in text
    assert "wait for it to finish, or pass another --out folder" in text
    with study_lock(tmp_path):  # released after the with block
        pass
    assert (tmp_path / LOCK_FILE).is_file()


def test_a_killed_holder_releases_the_lock(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(StudyInUseError, match=f"pid {proc.pid} on"):
            with study_lock(tmp_path):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with study_lock(tmp_path):  # the stale lock file blocks nothing
        pass


def test_a_lock_file_learnact_did_not_write_is_never_written_through(tmp_path):
    from learnact.exceptions import RunStoreError

    lock = tmp_path / LOCK_FILE
    lock.write_text("my notes\n")
    with pytest.raises(RunStoreError, match=r"\.lock' holds what learnact did not write .*it was left alone"):
        with study_lock(tmp_path):
            pass
    assert lock.read_text() == "my notes\n"
    lock.unlink()
    target = tmp_path / "target.txt"
    target.write_text("mine\n")
    lock.symlink_to(target)
    with pytest.raises(RunStoreError, match=r"\.lock' is a link or not a regular file"):
        with study_lock(tmp_path):
            pass
    assert target.read_text() == "mine\n" and lock.is_symlink()
    lock.unlink()
    lock.mkdir()
    with pytest.raises(RunStoreError, match=r"\.lock' is a folder, in the way where learnact writes"):
        with study_lock(tmp_path):
            pass
    lock.rmdir()
    lock.write_text("pid 12 on host-1.example, since 2026-01-02 03:04:05")  # an earlier holder's: taken
    with study_lock(tmp_path):
        assert lock.read_text().startswith(f"pid {os.getpid()} on ")
