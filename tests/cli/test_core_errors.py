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
