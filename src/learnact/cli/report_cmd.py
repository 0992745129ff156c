"""``learnact report``: build the report pack of a study (reporting stage)."""

from __future__ import annotations

from .app import app  # noqa: F401

__all__: list[str] = []
