"""Helper of test_parallel: an object that writes a file when the interpreter importing this module tears down."""

from __future__ import annotations

import os

_PATH = os.environ.get("LEARNACT_TEST_TEARDOWN_MARKER", os.devnull)


class _WritesOnTeardown:
    # what it calls is bound now: at teardown, the builtins and the module's globals may be gone
    def __del__(self, _open=open, _path=_PATH) -> None:
        with _open(_path, "a") as out:
            out.write("finalised\n")


KEPT = _WritesOnTeardown()
