"""Shared figures of the fuzz tests (imported by conftest and the tests).

Property-based fuzzing of learnact's loaders and CLI (hypothesis).

Every fuzz test allows two outcomes only: success, or a learnact error (exit
code 2 through the CLI), within a time bound. The figures (inputs tried per
loader, crashes, slowest input) are printed at the end of the session.

CI runs a fixed seed and a fixed example count (``derandomize=True``). A
longer run: ``LEARNACT_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest -q tests/fuzz``
(the multiplier applies to every loader; see docs/RELIABILITY.md).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def examples(ci_default: int) -> int:
    """Examples per fuzz test: the CI default, or ``LEARNACT_FUZZ_EXAMPLES`` scaled to it."""
    override = os.environ.get("LEARNACT_FUZZ_EXAMPLES")
    if not override:
        return ci_default
    return max(1, int(override) * ci_default // 100)


@dataclass
class _Figures:
    tried: int = 0
    crashes: int = 0
    slowest_s: float = 0.0
    slowest_input: str = ""
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


FIGURES: dict[str, _Figures] = defaultdict(_Figures)


@contextmanager
def record(loader: str, described: str) -> Iterator[dict[str, str]]:
    """Time one fuzz input of ``loader``; a raised assertion counts as a crash.

    The body sets ``outcome["kind"]`` to say how it ended ("ok", "error").
    """
    figures = FIGURES[loader]
    outcome = {"kind": "ok"}
    start = time.perf_counter()
    try:
        yield outcome
    except BaseException:
        figures.crashes += 1
        raise
    finally:
        elapsed = time.perf_counter() - start
        figures.tried += 1
        figures.outcomes[outcome["kind"]] += 1
        if elapsed > figures.slowest_s:
            figures.slowest_s = elapsed
            figures.slowest_input = described[:160]
