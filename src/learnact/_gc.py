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
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["loading"]


@contextmanager
def loading() -> Iterator[None]:
    """Run the block (big imports) without collections, then freeze what the process holds; the collector's
    on/off state is restored."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
