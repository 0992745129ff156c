"""What a report worker runs with (a module, so the fork server's workers can import the function)."""

from __future__ import annotations

import gc
import os


def probe(_: object) -> tuple[int, str | None, list[int], int, int, int]:
    """This worker's pid, its OPENBLAS_NUM_THREADS, each loaded OpenBLAS's thread count, the objects the
    collector tracks against those frozen, and the collector's youngest-generation threshold."""
    import threadpoolctl

    threads = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "openblas"]
    return (os.getpid(), os.environ.get("OPENBLAS_NUM_THREADS"), threads, len(gc.get_objects()),
            gc.get_freeze_count(), gc.get_threshold()[0])
