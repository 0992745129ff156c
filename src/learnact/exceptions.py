"""Error types raised by learnact.

Every user-facing problem is a :class:`LearnactError` (or a plain ``ValueError`` /
``TypeError`` naming the bad value). The CLI turns any of them into one readable
line and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "LearnactError",
    "ConfigError",
    "DataError",
    "RunStoreError",
    "StudyInUseError",
    "CheckpointError",
]


class LearnactError(Exception):
    """Base class of all errors learnact raises on purpose."""


class ConfigError(LearnactError, ValueError):
    """A configuration is invalid; the message lists every problem found."""


class DataError(LearnactError, ValueError):
    """A data set could not be loaded or is unusable (text, missing values, ...)."""


class RunStoreError(LearnactError):
    """A study or run folder is missing, corrupt or unusable."""


class StudyInUseError(RunStoreError):
    """Another process holds the lock on a study folder."""


class CheckpointError(RunStoreError):
    """A saved run (weights, preprocessing) cannot be read."""
