"""Small argument checks shared by the whole package (private)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["check_positive", "check_positive_int", "closest", "did_you_mean"]


def check_positive(value: float, name: str) -> float:
    """Return ``value`` if it is a finite number > 0, else raise ``ValueError``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or value != value:
        raise ValueError(f"{name} must be > 0, got {name}={value!r}")
    if value == float("inf"):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")
    return float(value)


def check_positive_int(value: int, name: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {name}={value!r}")
    return value


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option closest to ``word`` (difflib ratio >= 0.6), case aside (``"Relu"``: ``'relu'``, not ``'elu'``),
    or ``None``."""
    lowered: dict[str, str] = {}
    for option in options:
        lowered.setdefault(option.lower(), option)
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for the closest option (:func:`closest`), or ``""``."""
    close = closest(word, options)
    return f" (did you mean {close!r}?)" if close is not None else ""
