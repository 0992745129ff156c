"""The ``learnact`` command line."""

from .app import app, console, main

__all__ = ["app", "console", "main"]
