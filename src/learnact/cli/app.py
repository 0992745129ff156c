"""The ``learnact`` Typer app and the entry point."""

from __future__ import annotations

import sys

import typer

from .errors import run_cli

__all__ = ["app", "main"]

app = typer.Typer(
    name="learnact",
    help="Learn activation functions: gated mixtures, multi-seed studies, report packs.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Each command lives in its own module and registers itself on ``app``.
from . import compare_cmd, init_cmd, list_cmd, predict_cmd, report_cmd, run_cmd  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    sys.exit(run_cli(app, argv))
