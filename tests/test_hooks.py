"""``learnact._hooks``: callbacks registered for a block, called in order, gone after it (even after an error)."""

from __future__ import annotations

import pytest

from learnact._hooks import Hooks


def test_callbacks_are_called_in_order_with_the_arguments_within_their_blocks_only():
    hooks, seen = Hooks(), []
    hooks.call(0)
    with hooks.during(lambda n: seen.append(("a", n))):
        hooks.call(1)
        with hooks.during(lambda n: seen.append(("b", n))):
            hooks.call(2)
        hooks.call(3)
    hooks.call(4)
    assert seen == [("a", 1), ("a", 2), ("b", 2), ("a", 3)]


def test_a_block_that_fails_removes_its_callback_and_a_failing_callback_propagates():
    hooks, seen = Hooks(), []
    with pytest.raises(KeyError), hooks.during(seen.append):
        raise KeyError("the block failed")
    hooks.call("after")
    assert seen == []

    def fails(_: object) -> None:
        raise RuntimeError("the callback failed")

    with hooks.during(fails), hooks.during(seen.append), pytest.raises(RuntimeError, match="callback failed"):
        hooks.call("x")
    assert seen == []  # the later callback is not called
