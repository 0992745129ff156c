"""The ``learnact`` Typer app, the ``list`` command and the entry point."""

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


@app.command("list")
def list_cmd(what: str = typer.Argument("all", help="presets | activations | all")) -> None:
    """List built-in presets and registered candidate activations."""
    from ..names import list_candidates, list_presets  # the name registry: no torch

    if what not in ("all", "presets", "activations"):
        raise ValueError(f"unknown list {what!r}; use presets, activations or all")
    if what in ("all", "presets"):
        print("presets:     " + ", ".join(list_presets()))
    if what in ("all", "activations"):
        print("activations: " + ", ".join(list_candidates()))


# Each command lives in its own module and registers itself on ``app``.
from . import compare_cmd, init_cmd, predict_cmd, report_cmd, run_cmd  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    sys.exit(run_cli(app, argv))
