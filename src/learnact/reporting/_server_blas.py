"""One OpenBLAS thread in the report's fork server and its workers (private; first in its preload).

Imported first by the fork server (:data:`.parallel.PRELOAD`), before
anything there loads numpy: :func:`learnact._blas.one_thread` (why: see
there). The workers the server forks inherit the setting. Only that preload
imports this module.
"""

from __future__ import annotations

from .._blas import one_thread

__all__ = ["SET_HERE"]

SET_HERE = one_thread()
"""Whether this import set ``OPENBLAS_NUM_THREADS`` (numpy not loaded yet, and the user did not set it)."""
