"""The `learnact` command as a user calls it: usage errors, help, version, the study argument, Ctrl-C and
SIGTERM, --debug, internal errors and OS errors (issue 11).

Every test runs the real console script in a subprocess (the injected-error tests run the same entry
point, ``learnact.cli.main``, in ``python -c`` after replacing one function), except the table of OS
errors, which goes through :func:`~learnact.cli.errors.run_cli` in this process.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import learnact
from learnact import store
from learnact.cli.app import app
from learnact.cli.errors import DEBUG_ENV, run_cli
from learnact.experiment.grid import study_from_dict

#: The folder holding the ``learnact`` package under test (put on the subprocesses' PYTHONPATH).
SRC = Path(learnact.__file__).resolve().parent.parent

TINY = textwrap.dedent("""
    name = "tiny"
    seeds = [1, 2]
    [backbone]
    hidden = [8]
    [train]
    max_epochs = 2
    [[variants]]
    name = "relu"
    kind = "fixed"
    activation = "relu"
""")

# 4 variants x 6 seeds of 20 epochs: still training when the signal comes
LONG = {
    "name": "long",
    "seeds": {"count": 6, "base": 0},
    "backbone": {"hidden": [8]},
    "train": {"max_epochs": 20, "patience": 20},
    "variants": [
        {"name": "fixed_{activation}", "kind": "fixed", "activation": ["relu", "tanh"]},
        {"name": "gated_T{temperature}", "temperature": [0.5, 1.0]},
    ],
}

RESUME = "learnact: interrupted; finished runs are kept, rerun to resume"


def _script() -> list[str]:
    """The installed ``learnact`` console script beside this Python (``python -m learnact`` without one)."""
    script = Path(sys.executable).with_name("learnact")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "learnact"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def _learnact(*args: str, cwd: Path, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *_script(), *args], capture_output=True, text=True, cwd=cwd,
                          env=env or _env(), timeout=timeout, stdin=subprocess.DEVNULL)


def _tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


def _one_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, proc.stderr
    _no_traceback(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# -- usage errors, help, version ------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [  # as worded by Typer 0.15 to 0.29
    (["run", "--bogus"], "No such option"),
    (["run", "--out"], "Option '--out' requires an argument"),
    (["run", "--threads", "abc"], "Invalid value for '--threads'"),
    (["report"], "Missing argument"),
    (["bogus"], "No such command 'bogus'"),
    (["--bogus"], "No such option"),
    (["compare"], "Missing argument"),
    (["predict", "somewhere"], "Missing argument"),
    (["init", "--bogus"], "No such option"),
])
def test_usage_errors_are_one_line_naming_the_help_and_exit_2(tmp_path, args, message):
    proc = _learnact(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    _no_traceback(proc)
    command = "learnact" if args[0].startswith("-") or args[0] == "bogus" else f"learnact {args[0]}"
    # one line, as every other error: the problem in Click's words, then where the fix is (no framed usage block)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("learnact: error: "), proc.stderr
    assert message in proc.stderr
    assert proc.stderr.rstrip().endswith(f"; see '{command} --help'"), proc.stderr
    assert "Usage:" not in proc.stderr and "╭" not in proc.stderr
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, line", [
    # Click's guess counts the shared "--": `--bogus` got "(Possible options: --out)"; only a close name is offered
    (["run", "--bogus"], "learnact: error: No such option: --bogus; see 'learnact run --help'"),
    (["run", "--forc"], "learnact: error: No such option: --forc (did you mean '--force'?); see 'learnact run --help'"),
    (["predict", "--outt", "x"],
     "learnact: error: No such option: --outt (did you mean '--out'?); see 'learnact predict --help'"),
])
def test_an_unknown_option_suggests_only_a_close_one(tmp_path, args, line):
    assert _one_line(_learnact(*args, cwd=tmp_path)) == line


def test_run_help_shows_the_optional_study_argument_in_brackets_once(tmp_path):
    # Typer 0.29 brackets an optional argument itself: the bracketed name the older releases needed read
    # "[[STUDY]]" there
    proc = _learnact("run", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    usage = next(line for line in proc.stdout.splitlines() if "Usage:" in line)
    assert usage.split()[:4] == ["Usage:", "learnact", "run", "[OPTIONS]"], usage
    assert usage.split()[4:] == ["[study]" if "{study}" in _learnact("report", "--help", cwd=tmp_path).stdout
                                 else "[STUDY]"], usage  # as Typer writes the other commands' arguments


@pytest.mark.parametrize("command", ["run", "report", "compare", "predict", "list", "init"])
def test_help_shows_no_docstring_markup(tmp_path, command):
    # the commands' docstrings are their help: reST's ``literal`` showed as doubled backticks (compare --dataset)
    proc = _learnact(command, "--help", cwd=tmp_path, env=_env(COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr
    for markup in ("``", ":func:", ":class:", ":mod:"):
        assert markup not in proc.stdout, (markup, proc.stdout)


def test_bare_learnact_prints_help_and_exits_0(tmp_path):
    proc = _learnact(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "Usage: learnact [OPTIONS] COMMAND [ARGS]..." in proc.stdout
    for command in ("run", "report", "compare", "predict", "init", "list", "--version", "--debug"):
        assert command in proc.stdout


def test_version(tmp_path):
    proc = _learnact("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"learnact {learnact.__version__} (Python ")
    assert "torch " in proc.stdout and proc.stderr == ""


# -- the study as an argument ---------------------------------------------------------------------------


def test_run_takes_the_study_file_as_an_argument(tmp_path):
    study = _tiny(tmp_path)
    proc = _learnact("run", study.name, "--out", "d", "--engine", "sequential", "--no-report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    assert f"study 'tiny' from config {study.name}; folder d" in proc.stderr
    assert "tiny: 1 variants x 2 seeds (2 trained, 0 already done)" in proc.stdout
    assert len(store.finished_runs(tmp_path / "d")) == 2


def test_run_on_a_terminal_shows_the_bar_trains_and_prints_the_leaderboard(tmp_path):
    # on a terminal the progress bar runs a redraw thread beside training's forked workers (cli.progress): the
    # command must finish, with the bar, the leaderboard and every run folder, and no process left hanging
    import pty
    import re

    (tmp_path / "long.json").write_text(json.dumps(LONG))
    total = len(study_from_dict(LONG).runs())
    master, slave = pty.openpty()
    proc = subprocess.Popen([*_script(), "run", "long.json", "--out", "d", "--no-report"], cwd=tmp_path,
                            env=_env(), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the command and its processes closed the terminal
                break
            if not chunk:
                break
            out += chunk
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))
    assert code == 0, text[-3000:]
    assert "Traceback" not in text
    assert f"{total}/{total}" in text and "elapsed" in text  # the bar, at its end
    assert f"({total} trained, 0 already done)" in text and "study folder:" in text
    assert len(store.finished_runs(tmp_path / "d")) == total


@pytest.mark.parametrize("other", [["--config", "tiny.toml"], ["--preset", "headline"]])
def test_the_study_argument_and_an_option_together_is_one_line(tmp_path, other):
    _tiny(tmp_path)
    line = _one_line(_learnact("run", "tiny.toml", *other, "--out", "d", cwd=tmp_path))
    assert line.startswith("learnact: error: give the study once: as the argument STUDY or with --config/--preset, "
                           "not both")
    assert not (tmp_path / "d").exists()


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------------------


def _default_sigint() -> None:  # a test runner may ignore SIGINT; the child gets Python's usual Ctrl-C
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_run_prints_the_resume_message(tmp_path, signum, code):
    (tmp_path / "long.json").write_text(json.dumps(LONG))
    folder = tmp_path / "study"
    total = len(study_from_dict(LONG).runs())
    proc = subprocess.Popen([*_script(), "run", "long.json", "--out", "study", "--engine", "sequential", "-q",
                             "--no-report"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 240
        while not store.finished_runs(folder):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no run finished"
            time.sleep(0.01)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert err.strip() == RESUME
    assert "Traceback" not in out
    finished = len(store.finished_runs(folder))
    assert 1 <= finished < total, "the signal must come in the middle of the study"
    assert f"WARNING interrupted; {finished} runs finished, rerun to resume" in (folder / "study.log").read_text()


def test_a_signal_during_a_run_without_out_names_the_folder_to_resume(tmp_path):
    """Without --out the same command starts a new folder: the message says to rerun with --out FOLDER, and that
    resumes the interrupted study (its finished runs are not trained again)."""
    (tmp_path / "long.json").write_text(json.dumps(LONG))
    total = len(study_from_dict(LONG).runs())
    proc = subprocess.Popen([*_script(), "run", "long.json", "--engine", "sequential", "-q", "--no-report"],
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 240
        while not [f for f in tmp_path.glob("learnact-study-long-*") if store.finished_runs(f)]:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no run finished"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    (folder,) = tmp_path.glob("learnact-study-long-*")
    assert err.strip() == (f"learnact: interrupted; finished runs are kept, rerun with --out {folder.name} to "
                           f"resume")
    finished = len(store.finished_runs(folder))
    assert 1 <= finished < total, "the signal must come in the middle of the study"
    again = _learnact("run", "long.json", "--out", folder.name, "--engine", "sequential", "--no-report", "-q",
                      cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"({total - finished} trained, {finished} already done)" in again.stdout
    assert list(tmp_path.glob("learnact-study-long-*")) == [folder]


# -- internal errors and --debug ------------------------------------------------------------------------

INJECT = textwrap.dedent("""
    import sys

    import learnact.experiment.executors as executors
    import learnact.reporting as reporting
    from learnact.cli import main

    where = sys.argv[1]

    def boom(*args, **kwargs):
        raise ZeroDivisionError("injected in " + where)

    if where == "training":
        executors.train_group = boom
    else:
        reporting.build_report = boom
    main(sys.argv[2:])
""")


def _inject(tmp_path: Path, where: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", INJECT, where, *args], capture_output=True, text=True,
                          cwd=tmp_path, env=_env(**env), timeout=300, stdin=subprocess.DEVNULL)


def _first_run_id() -> str:
    return study_from_dict({"name": "tiny", "seeds": [1, 2], "backbone": {"hidden": [8]}, "train": {"max_epochs": 2},
                            "variants": [{"name": "relu", "kind": "fixed", "activation": "relu"}]}).runs()[0].run_id


def test_an_internal_error_in_a_run_is_one_line_naming_the_run_and_the_log(tmp_path):
    _tiny(tmp_path)
    proc = _inject(tmp_path, "training", "run", "tiny.toml", "--out", "d", "--engine", "sequential", "-q")
    line = _one_line(proc, code=1)
    run_id = _first_run_id()
    assert line == (f"learnact: internal error in run {run_id} (ZeroDivisionError: injected in training); "
                    f"the traceback is in d/study.log; please report it")
    log = (tmp_path / "d" / "study.log").read_text()
    assert f"ERROR stopped: injected in training (run {run_id})\nTraceback (most recent call last):" in log
    assert "ZeroDivisionError: injected in training" in log


@pytest.mark.parametrize("how", ["option", "environment"])
def test_debug_prints_the_traceback(tmp_path, how):
    _tiny(tmp_path)
    args = ["run", "tiny.toml", "--out", "d", "--engine", "sequential", "-q"]
    if how == "option":
        proc = _inject(tmp_path, "training", "--debug", *args)
    else:
        proc = _inject(tmp_path, "training", *args, **{DEBUG_ENV: "1"})
    assert proc.returncode == 1
    *trace, line = proc.stderr.strip().splitlines()
    assert trace[0] == "Traceback (most recent call last):"
    assert ", in boom" in proc.stderr and "ZeroDivisionError: injected in training" in trace
    assert line.startswith(f"learnact: internal error in run {_first_run_id()} ")


def test_an_internal_error_after_training_is_logged_too(tmp_path):
    _tiny(tmp_path)
    proc = _inject(tmp_path, "report", "run", "tiny.toml", "--out", "d", "--engine", "sequential", "-q")
    assert _one_line(proc, code=1) == ("learnact: internal error (ZeroDivisionError: injected in report); "
                                       "the traceback is in d/study.log; please report it")
    log = (tmp_path / "d" / "study.log").read_text()
    assert "ERROR internal error: ZeroDivisionError: injected in report\nTraceback (most recent call last):" in log
    assert len(store.finished_runs(tmp_path / "d")) == 2  # the runs are kept


def test_an_internal_error_without_a_study_log_points_to_debug(tmp_path):
    proc = _inject(tmp_path, "report", "report", "somewhere")
    assert _one_line(proc, code=1) == ("learnact: internal error (ZeroDivisionError: injected in report); rerun "
                                       "with --debug to see the traceback; please report it")


# -- OS errors ------------------------------------------------------------------------------------------


def test_a_file_name_too_long_is_one_line(tmp_path):
    _tiny(tmp_path)
    line = _one_line(_learnact("run", "tiny.toml", "--out", "n" * 300, "--engine", "sequential", cwd=tmp_path))
    assert line.startswith("learnact: error: File name too long: ")
    assert line.endswith("use a shorter --out path or shorter study and variant names")


def test_out_naming_a_file_is_one_line_and_leaves_it_alone(tmp_path):
    _tiny(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    line = _one_line(_learnact("run", "tiny.toml", "--out", "notes.txt", cwd=tmp_path))
    assert line == ("learnact: error: --out 'notes.txt' is a file, not a folder; give a new folder or an existing "
                    "study folder")
    line = _one_line(_learnact("run", "tiny.toml", "--out", "notes.txt/d", cwd=tmp_path))
    assert "output folder's parent 'notes.txt' is a file, not a folder" in line
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def _mount_prefix(tmp_path: Path, options: str) -> tuple[tuple[str, ...], Path]:
    """A command prefix that runs the rest in a mount namespace with a small tmpfs (``options``) at ``mnt``."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare to mount a small file system")
    flags = "-m" if os.geteuid() == 0 else "-rm"
    script = f'mount -t tmpfs -o size=64k tmpfs "{mnt}" && mount -o "remount,{options}" "{mnt}" && exec "$@"'
    probe = subprocess.run([unshare, flags, "sh", "-c", script, "sh", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a file system here (unshare {flags}: {probe.stderr.strip()})")
    return (unshare, flags, "sh", "-c", script, "sh"), mnt


@pytest.mark.parametrize("options, message, fix", [
    ("ro", "learnact: error: cannot write '{mnt}/d': Read-only file system (EROFS)",
     "make the folder writable or choose another output folder"),
    ("size=16k", "learnact: error: cannot write '{mnt}/d",
     "free some space, then rerun the same command to resume (finished runs are kept)"),
])
def test_a_read_only_or_full_file_system_is_one_line(tmp_path, options, message, fix):
    study = _tiny(tmp_path)
    prefix, mnt = _mount_prefix(tmp_path, options)
    proc = _learnact("run", str(study), "--out", str(mnt / "d"), "--engine", "sequential", "-q", cwd=tmp_path,
                     prefix=prefix)
    line = _one_line(proc)
    assert line.startswith(message.format(mnt=mnt))
    assert line.endswith(f"nothing half-written was left behind; {fix}")
    if options != "ro":
        assert "No space left on device (ENOSPC)" in line


# the tiny study with a gated variant too, so its report draws the gate figures
_REPORTED = TINY + textwrap.dedent("""
    [[variants]]
    name = "gated"
    kind = "gated"
    candidates = ["relu", "tanh"]
""")

# Run inside the mount namespace: copy the study onto the small disk, build its report there, then list every
# file of the report that is not whole (a temporary file, a PNG that does not decode, a PDF without its end
# marker) into a file on the real disk, and exit with the report's status.
_CHECK_REPORT = textwrap.dedent("""
    import pathlib, sys
    from PIL import Image
    bad = []
    for p in sorted(pathlib.Path(sys.argv[1]).rglob("*")):
        if not p.is_file():
            continue
        if p.name.startswith(".tmp-"):
            bad.append(f"{p.name}: temporary file left")
        elif p.suffix == ".png":
            try:
                with Image.open(p) as im:
                    im.load()
            except Exception as exc:
                bad.append(f"{p.name}: {exc}")
        elif p.suffix == ".pdf" and not p.read_bytes().rstrip().endswith(b"%%EOF"):
            bad.append(f"{p.name}: no %%EOF")
    pathlib.Path(sys.argv[2]).write_text("\\n".join(bad))
""")


def _kib(path: Path) -> int:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


@pytest.fixture(scope="module")
def reported_study(tmp_path_factory) -> tuple[Path, int, int]:
    """A finished study without its report, its size and its report's size on a roomy disk (KiB)."""
    where = tmp_path_factory.mktemp("reported")
    study_file = where / "reported.toml"
    study_file.write_text(_REPORTED)
    study = where / "s"
    assert _learnact("run", str(study_file), "--out", str(study), "--no-report", "-q", cwd=where).returncode == 0
    roomy = _learnact("report", str(study), cwd=where)
    assert roomy.returncode == 0, roomy.stderr
    report_kib = _kib(study / "report")
    shutil.rmtree(study / "report")
    return study, _kib(study), report_kib


@pytest.mark.parametrize("share", [0.3, 0.6, 0.9])
def test_a_full_disk_while_the_report_is_written_leaves_no_half_written_file(tmp_path, reported_study, share):
    # A real full disk (a small tmpfs), filled part of the way through the report: every figure, table and page
    # is written through a temporary file and a rename, so the report folder holds whole files only and the
    # error is one line. Before, a PNG or PDF cut off mid-write stayed behind (a PDF without its end marker, a
    # PNG that did not decode).
    study, study_kib, report_kib = reported_study
    size = study_kib + int(share * report_kib)
    prefix, mnt = _mount_prefix(tmp_path, f"size={size}k")
    checker, found = tmp_path / "check_report.py", tmp_path / "not_whole.txt"
    checker.write_text(_CHECK_REPORT)
    inner = ('src=$1 dst=$2 py=$3 check=$4 err=$5 out=$6; shift 6; '
             'cp -r "$src" "$dst" && "$@" report "$dst" 2> "$err"; rc=$?; "$py" "$check" "$dst/report" "$out"; exit $rc')
    proc = subprocess.run([*prefix, "sh", "-c", inner, "sh", str(study), str(mnt / "s"), sys.executable, str(checker),
                           str(tmp_path / "stderr.txt"), str(found), *_script()],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300,
                          stdin=subprocess.DEVNULL)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 2, (proc.returncode, proc.stderr, stderr)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"learnact: error: cannot write '{mnt}/s/report/"), lines[0]
    assert "No space left on device (ENOSPC); nothing half-written was left behind" in lines[0]
    assert found.read_text() == "", found.read_text()


def test_permission_denied_is_one_line(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="learnact-perm-"))  # readable by everyone, unlike pytest's tmp_path
    try:
        (base / "tiny.toml").write_text(TINY)
        (base / "home").mkdir()
        (base / "home").chmod(0o777)
        env = _env(HOME=str(base / "home"), MPLCONFIGDIR=str(base / "home"))
        prefix: tuple[str, ...] = ()
        if os.geteuid() == 0:  # root ignores permissions: run as nobody in a folder only root may write
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root, and no setpriv to run as another user: root may write anywhere")
            prefix = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
            base.chmod(0o755)
            probe = subprocess.run([*prefix, sys.executable, "-c", "import learnact.cli"], capture_output=True,
                                   text=True, env=env, cwd=base)
            if probe.returncode != 0:
                pytest.skip(f"user nobody cannot import learnact from here: {probe.stderr.strip()[-300:]}")
        else:
            base.chmod(0o555)
        proc = _learnact("run", "tiny.toml", "--out", "d", "--engine", "sequential", cwd=base, prefix=prefix,
                         env=env)
        assert _one_line(proc) == ("learnact: error: cannot write 'd': Permission denied (EACCES); nothing "
                                   "half-written was left behind; make the folder writable or choose another output "
                                   "folder")
    finally:
        base.chmod(0o755)
        shutil.rmtree(base)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.ENAMETOOLONG, errno.EEXIST, errno.EACCES,
                                  errno.ENOTDIR, errno.EISDIR])
def test_os_errors_a_user_can_fix_are_one_line_naming_the_path(tmp_path, monkeypatch, capsys, code):
    def fail(path):
        raise OSError(code, os.strerror(code), str(tmp_path / "x.toml"))

    monkeypatch.setattr("learnact.experiment.example.example_text", fail)
    assert run_cli(app, ["init", str(tmp_path / "x.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"learnact: error: {os.strerror(code)}: '{tmp_path / 'x.toml'}'; ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_os_error_without_a_file_name_names_the_folder_written(tmp_path, monkeypatch, capsys):
    def fail(path):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write() to a full disk says it

    monkeypatch.setattr("learnact.experiment.example.example_text", fail)
    assert run_cli(app, ["init", str(tmp_path / "x.toml")]) == 2
    assert capsys.readouterr().err == (f"learnact: error: No space left on device (writing to "
                                       f"'{tmp_path / 'x.toml'}'); free space on that disk or choose another "
                                       f"folder\n")  # init has no runs to keep or resume: only `run` says so


def test_a_full_disk_behind_another_error_is_reported_as_the_full_disk(tmp_path, monkeypatch, capsys):
    def fail(path):  # a library that fails again while cleaning up after a write that hit a full disk
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        except OSError:
            raise AttributeError("'Stream' object has no attribute 'pos'")  # noqa: B904  # chained, as the library's

    monkeypatch.setattr("learnact.experiment.example.example_text", fail)
    assert run_cli(app, ["init", str(tmp_path / "x.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"learnact: error: No space left on device: '{tmp_path / 'x.toml'}'; free space")
    assert len(err.strip().splitlines()) == 1


def test_the_console_script_exits_without_teardown_but_runs_exit_handlers_and_waits_for_threads(tmp_path):
    # learnact.cli.console ends the process with os._exit (the interpreter's teardown took 0.7 s after a run);
    # what a normal exit does first must still happen: atexit handlers, non-daemon threads, flushed output,
    # and the command's own exit code
    code = textwrap.dedent(f"""
        import atexit, sys, threading, time
        from pathlib import Path
        out = Path({str(tmp_path)!r})
        atexit.register(lambda: (out / "atexit").write_text("ran"))
        def late():
            time.sleep(0.5)
            (out / "thread").write_text("finished")
        threading.Thread(target=late).start()
        class Teardown:
            def __del__(self):  # runs when the interpreter tears down its modules: not with console()
                (out / "teardown").write_text("ran")
        kept = Teardown()
        sys.argv = ["learnact", *sys.argv[1:]]
        from learnact.cli import console
        console()
        (out / "after").write_text("console returned")  # never: console() ends the process
    """)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    ok = subprocess.run([sys.executable, "-c", code, "list", "presets"], capture_output=True, text=True, env=env,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "families" in ok.stdout and "paper" in ok.stdout  # the whole listing reached the pipe
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").read_text() == "finished"
    assert not (tmp_path / "after").exists() and not (tmp_path / "teardown").exists()
    bad = subprocess.run([sys.executable, "-c", code, "run", "--no-such-option"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("user_value", [None, "3"])
def test_the_console_script_gives_its_processes_one_openblas_thread_unless_the_user_chose(tmp_path, user_value):
    # learnact._blas: OpenBLAS's idle threads spun beside learnact's own work; the command sets the variable
    # before anything loads numpy (its helpers and report workers inherit it), never over the user's value
    from learnact._blas import VARIABLE

    code = textwrap.dedent(f"""
        import atexit, os, sys
        from pathlib import Path
        atexit.register(lambda: Path({str(tmp_path / "seen")!r}).write_text(os.environ.get({VARIABLE!r}, "unset")))
        sys.argv = ["learnact", "list", "presets"]
        from learnact.cli import console
        console()
    """)
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    env["PYTHONPATH"] = str(SRC)
    if user_value is not None:
        env[VARIABLE] = user_value
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "seen").read_text() == (user_value or "1")


@pytest.mark.parametrize("command", ["", "run", "report", "compare", "predict", "init", "list"])
def test_help_shows_no_type_for_a_flag(tmp_path, command):
    # Typer 0.29 wrote "--force <bool>", read as an option that wants a value; the flags take none
    proc = _learnact(*([command] if command else []), "--help", cwd=tmp_path, env=_env(COLUMNS="120"))
    assert proc.returncode == 0, proc.stderr
    assert "<bool>" not in proc.stdout and "BOOLEAN" not in proc.stdout
    flag = next(line for line in proc.stdout.splitlines() if "--help" in line)
    assert flag.split("--help")[1].split()[:3] == ["Show", "this", "message"], flag
