"""Bad input to `learnact run`: one line, exit code 2, no traceback (issue: core)."""

import subprocess
import sys
import textwrap

import pytest

BASE = """
name = "tiny"
seeds = [1]
[backbone]
hidden = {hidden}
[train]
max_epochs = 2
[[variants]]
name = "v"
kind = "gated"
candidates = {candidates}
temperature = {temperature}
"""


def _run(tmp_path, *args):
    proc = subprocess.run([sys.executable, "-m", "learnact", "run", "-q", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _config(tmp_path, hidden="[8]", candidates='["relu", "tanh"]', temperature="1.0"):
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(BASE.format(hidden=hidden, candidates=candidates, temperature=temperature)))
    return str(path)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"candidates": '["relu", "tahn"]'}, "unknown activation 'tahn'"),
        ({"temperature": "0.0"}, "temperature"),
        ({"temperature": "-2"}, "temperature"),
        ({"candidates": "[]"}, "candidates"),
        ({"hidden": "[0]"}, "hidden"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path, kwargs, pattern):
    rc, out, err = _run(tmp_path, "--config", _config(tmp_path, **kwargs), "--out", str(tmp_path / "out"))
    assert rc == 2, err
    assert pattern in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unknown_activation_lists_valid_names(tmp_path):
    rc, _, err = _run(tmp_path, "--config", _config(tmp_path, candidates='["relu", "tahn"]'))
    assert rc == 2 and "tanh" in err and "sigmoid" in err


def test_missing_output_parent(tmp_path):
    rc, _, err = _run(tmp_path, "--config", _config(tmp_path), "--out", str(tmp_path / "no" / "such" / "dir"))
    assert rc == 2 and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "no").exists()


def _csv_study(tmp_path, csv_name, frame):
    frame.to_csv(tmp_path / csv_name, index=False)
    path = tmp_path / f"{csv_name}.toml"
    path.write_text(f'name = "c"\nseeds = [1]\n[data]\ndataset = "{tmp_path / csv_name}"\ntarget = "label"\n'
                    '[train]\nmax_epochs = 2\n[[variants]]\nname = "v"\nkind = "gated"\n')
    return str(path)


def test_bad_csv_is_one_line_and_keeps_existing_results(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    good = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    good["label"] = (good["a"] > 0).astype(int)
    rc, _, err = _run(tmp_path, "--no-report", "--config", _csv_study(tmp_path, "good.csv", good),
                      "--out", str(tmp_path / "study"))
    assert rc == 0, err
    before = sorted(p.name for p in (tmp_path / "study" / "runs").iterdir())
    missing = good.copy()
    missing.loc[3, "b"] = np.nan
    text = good.copy()
    text["c"] = text["c"].astype(str)
    text.loc[2, "c"] = "oops"
    for name, frame, pattern in [("missing.csv", missing, "missing values in columns ['b']"),
                                 ("text.csv", text, "non-numeric feature columns ['c']")]:
        for out in (tmp_path / f"new_{name}", tmp_path / "study"):
            rc, _, err = _run(tmp_path, "--config", _csv_study(tmp_path, name, frame), "--out", str(out))
            assert rc == 2 and pattern in err, err
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / f"new_{name}").exists()
    assert sorted(p.name for p in (tmp_path / "study" / "runs").iterdir()) == before


def test_sigterm_and_sigint_are_held_back_while_the_process_forks():
    """A signal whose handler raised inside one of Python's fork hooks (logging releases its lock in one) printed
    "Exception ignored in ... Traceback" and the interruption was lost: with the CLI's handlers installed, both
    signals are blocked from before the first fork hook to after the last, in parent and child, and the mask is
    as before once the fork is done."""
    code = textwrap.dedent("""
        import os, signal, sys
        seen = {}
        # registered before the CLI's hooks, as logging's are
        os.register_at_fork(after_in_parent=lambda: seen.setdefault("parent", signal.pthread_sigmask(signal.SIG_BLOCK, [])),
                            after_in_child=lambda: seen.setdefault("child", signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        from learnact.cli.errors import install_signal_handlers
        install_signal_handlers()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if {signal.SIGTERM, signal.SIGINT} <= seen["child"]
                     and not signal.pthread_sigmask(signal.SIG_BLOCK, []) else 1)
        _, status = os.waitpid(pid, 0)
        held = {signal.SIGTERM, signal.SIGINT} <= seen["parent"]
        print(held, os.waitstatus_to_exitcode(status), sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "0", "[]"]


def test_a_sigterm_held_during_a_fork_is_raised_after_it_in_the_forking_code():
    """A SIGTERM that arrives while the fork hooks run is delivered when they are done: the handler's
    ``Terminated`` reaches the code that called ``fork``, with nothing printed (before, the Python hook that
    unblocked the signal ran the handler inside itself: "Exception ignored in ... restore", the exception lost)."""
    code = textwrap.dedent("""
        import os, signal, sys
        # registered before the CLI's hooks: runs after its blocking hook, so the signal arrives held
        os.register_at_fork(before=lambda: os.kill(os.getpid(), signal.SIGTERM))
        from learnact.cli.errors import Terminated, install_signal_handlers
        install_signal_handlers()
        try:
            if os.fork() == 0:
                os._exit(0)
            after = "no signal"
        except Terminated:  # raised in this code, once fork has returned
            after = "terminated after the fork"
        os.wait()
        print(after)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\\n")[0].strip() == "terminated after the fork", (out.stdout, out.stderr)
    assert "Exception ignored" not in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "is empty; write a header row"),
    (b"a,b,label\n" + b"".join(f"{i},{i},{i % 2}\n".encode() for i in range(20)).replace(b"3,3,1", b"3,3,1,7"),
     "every row needs as many comma-separated fields as the header"),
    (b"a,a,label\n" + b"".join(f"{i},{i},{i % 2}\n".encode() for i in range(20)), "two columns named 'a'; rename one"),
])
def test_unreadable_csv_is_one_line_from_the_console_script(tmp_path, content, expected):
    from console import run_learnact

    (tmp_path / "bad.csv").write_bytes(content)
    (tmp_path / "study.toml").write_text('name = "c"\nseeds = [1]\n[data]\ndataset = "bad.csv"\n[train]\n'
                                         'max_epochs = 2\n[[variants]]\nname = "v"\nkind = "gated"\n')
    proc = run_learnact("run", "-q", "--config", "study.toml", "--out", "study", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "study").exists()


DUPLICATE_YAML = """\
name: dup
seeds: [1]
backbone:
  hidden: [4]
train:
  max_epochs: 3
variants:
  - {name: v, kind: fixed, activation: relu}
train:
  patience: 2
"""


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("study.yaml", DUPLICATE_YAML,
     "config 'study.yaml': key 'train' is given twice (lines 5 and 9), and only the later one would be used; "
     "merge the two into one"),
    ("study.yaml", DUPLICATE_YAML.replace("train:\n  patience: 2\n", "").replace(
        "activation: relu}", "activation: relu, patience: 1, patience: 2}"),
     "key 'variants[0].patience' is given twice (both on line 8)"),
    ("study.json", '{"name": "x", "seeds": [1], "name": "y", "variants": [{"name": "v", "kind": "fixed"}]}',
     "config 'study.json': key 'name' is given twice, and only the later one would be used; merge the two into one"),
    ("study.json", '{"name": "x", "seeds": [1], "variants": [{"name": "v", "kind": "fixed"}],'
                   ' "train": {"max_epochs": 3, "patience": 1, "max_epochs": 300}}',
     "key 'train.max_epochs' is given twice"),
], ids=["yaml-top", "yaml-variant", "json-top", "json-train"])
def test_a_key_given_twice_in_a_yaml_or_json_study_is_one_line(tmp_path, name, content, expected):
    # YAML and JSON parsers keep the later value silently (a whole [train] block was dropped); TOML refuses
    _study_file_refused(tmp_path, name, content.encode(), expected)


def _study_file_refused(tmp_path, name: str, content: bytes, expected: str) -> None:
    """`learnact run NAME --out d` with ``content`` in NAME: exit 2, one line holding ``expected``, no ``d``."""
    from console import run_learnact

    (tmp_path / name).write_bytes(content)
    proc = run_learnact("run", name, "--out", "d", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("study.yaml", b"", "config 'study.yaml' is empty (no settings); a study needs at least its variants (a list "
                        "under `variants:`); `learnact init study.yaml` writes a commented example"),
    ("study.yaml", b"# name: x\n", "config 'study.yaml' is empty (no settings)"),
    ("study.toml", b"\n", "config 'study.toml' is empty (no settings); a study needs at least its variants "
                          "([[variants]] tables); `learnact init study.toml` writes"),
    ("study.json", b"{}", "config 'study.json' is empty (no settings)"),
    ("study.toml", 'name = "café"\n[[variants]]\nname = "v"\n'.encode("latin-1"),
     "config 'study.toml' is not UTF-8 text (invalid continuation byte on line 1); save it as UTF-8"),
    ("study.json", b'{"name": "x",\n "seeds": [1,]}',
     "config 'study.json' is not valid JSON: Expecting value: line 2 column 14 (char 27); fix the syntax at that "
     "line"),
], ids=["yaml-empty", "yaml-comments", "toml-empty", "json-empty", "latin-1", "json-syntax"])
def test_an_empty_or_unreadable_study_file_says_what_to_do(tmp_path, name, content, expected):
    _study_file_refused(tmp_path, name, content, expected)
