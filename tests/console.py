"""Run the real ``learnact`` console script in a subprocess, as a user does, on this checkout's code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import learnact
from learnact.cli.errors import DEBUG_ENV

SRC = Path(learnact.__file__).resolve().parent.parent
"""The ``src`` folder of the package under test (put first on the subprocess's ``PYTHONPATH``)."""


def run_learnact(*args: str | Path, cwd: Path, paths: Sequence[str | Path] = (),
                 timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``learnact ARGS`` in ``cwd``: the console script next to this Python (``python -m learnact`` without one).

    ``LEARNACT_DEBUG`` (:data:`~learnact.cli.errors.DEBUG_ENV`) is dropped, so errors print as users see
    them; ``paths`` go on ``PYTHONPATH`` after the package (a plugin's folder); stdin is empty.
    """
    script = Path(sys.executable).with_name("learnact")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "learnact"]
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), *map(str, paths), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)
