"""``learnact compare``: paired comparisons against a reference variant (evaluation stage)."""

from __future__ import annotations

from .app import app  # noqa: F401

__all__: list[str] = []
