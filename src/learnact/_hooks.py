"""Callbacks registered for the length of a block and called where some work reaches a point (private; a leaf).

``learnact run`` does work of its own at two points of training without the
training code knowing the command: while the forked workers train
(:func:`learnact.training.scheduling.while_stacks_train`) and once a group is
trained (:func:`learnact.experiment.engines.when_trained`). Each point is a
:class:`Hooks`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["Hooks"]


class Hooks:
    """Callbacks registered for the length of a block (:meth:`during`) and called, in that order, by :meth:`call`."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., None]] = []

    @contextlib.contextmanager
    def during(self, callback: Callable[..., None]) -> Iterator[None]:
        """Within the block, :meth:`call` calls ``callback``; it is removed when the block ends, even by an error."""
        self._callbacks.append(callback)
        try:
            yield
        finally:
            self._callbacks.remove(callback)

    def call(self, *args: object) -> None:
        """Call each callback registered now with ``args``; an exception one raises propagates (the later ones are
        not called)."""
        for callback in tuple(self._callbacks):
            callback(*args)
