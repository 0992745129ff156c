"""``python -m learnact`` runs the command line."""

from .cli import console

console()
