"""``learnact run``: train a study and print its leaderboard."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .app import app

__all__ = ["run"]


def _default_out(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(f"learnact-study-{name}-{stamp}")
    n = 1
    while path.exists():
        n += 1
        path = Path(f"learnact-study-{name}-{stamp}-{n}")
    return path


@app.command()
def run(
    preset: str = typer.Option("paper", "--preset", "-p", help="Built-in study: paper (75 runs) or headline (15)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Study file (.toml/.yaml); overrides --preset."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Study folder (default: a new folder, printed)."),
    engine: str = typer.Option("sequential", "--engine", help="Training engine."),
    force: bool = typer.Option(False, "--force", help="Retrain runs that are already finished."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    threads: int = typer.Option(1, "--threads", help="Torch intra-op threads (1 is fastest for small MLPs)."),
) -> None:
    """Run a study (default: the paper's full study) and print its leaderboard."""
    import torch

    from ..evaluation.aggregate import leaderboard, runs_table
    from ..experiment import load_study, run_study
    from .display import print_leaderboard, progress_reporter

    study = load_study(config if config is not None else preset)
    folder = out if out is not None else _default_out(study.name)
    if not folder.parent.is_dir():
        raise FileNotFoundError(f"output folder's parent {str(folder.parent)!r} does not exist; create it first")
    torch.set_num_threads(max(1, threads))
    with progress_reporter(quiet, len(study.runs())) as progress:
        result = run_study(study, folder, engine=engine, force=force, progress=progress)
    table = leaderboard(runs_table(folder))
    table.to_csv(folder / "leaderboard.csv", index=False)
    print_leaderboard(table, title=f"{study.name}: {len(study.variants)} variants x {len(study.seeds)} seeds "
                                   f"({result.n_trained} trained, {result.n_skipped} already done)")
    print(f"study folder: {folder}")


