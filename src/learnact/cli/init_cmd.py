"""``learnact init``: write a commented example study file."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app

__all__ = ["init"]


@app.command()
def init(
    path: Path = typer.Argument(Path("study.toml"), help="File to write: .toml (default study.toml) or .yaml."),
    force: bool = typer.Option(False, "--force", help="Overwrite the file if it exists."),
) -> None:
    """Write a commented example study file to edit, then run with `learnact run --config PATH`."""
    from ..experiment.example import example_text
    from .errors import state

    state.writes_to = path

    text = example_text(path)
    if path.exists() and not force:
        raise ValueError(f"{str(path)!r} already exists; pass --force to overwrite it, or give another path")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist; create it first")
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}; edit it, then run: learnact run --config {path}")
