"""The cyclic garbage collector around the command line's big imports (private; a leaf module).

CPython's collector walks every tracked object of the oldest generation in a
full collection, and the growth of that generation while a large library is
imported (torch: hundreds of thousands of objects) sets off several such
collections, each walking everything loaded so far and finding next to no
garbage. In ``learnact run`` they cost 0.2-0.3 s before the leaderboard,
and more when the report loaded its plotting code (measured with
``gc.callbacks`` on the 2-core machine).

:func:`loading` runs such imports with the collector off, then freezes what
the process holds (``gc.freeze()``: module objects live as long as the
process, so no later collection need walk them) and turns the collector back
on. The command line uses it around its own heavy imports; a forked pool's
``gc.unfreeze()`` (:func:`learnact._processes.fork_map`, the training
workers) may end such a freeze later, once those imports are done.

:func:`paused` (the collector off for a block, no freeze) is for a process
that piles up long-lived objects without cycles: the engines' caller
building each trained run's artefacts while the stacks train, where full
collections walked every artefact built so far (1.7 s over the 1,005-run
study, beside the training workers).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["loading", "paused"]


@contextlib.contextmanager
def paused(*, freeze: bool = False) -> Iterator[None]:
    """Run the block without automatic collections (objects without cycles are freed as always); the
    collector's on/off state is restored after. ``freeze``: first freeze what the process then holds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def loading() -> contextlib.AbstractContextManager[None]:
    """Run the block (big imports) without collections, then freeze what the process holds (:func:`paused`)."""
    return paused(freeze=True)
