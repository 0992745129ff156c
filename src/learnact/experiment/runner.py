"""Run a study: plan runs, skip finished ones, train the rest, store results."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import StudyConfig
from ..exceptions import ConfigError
from .. import store
from .artifacts import build_artifacts
from .engines import ENGINES, prepare_splits

__all__ = ["StudyResult", "run_study"]

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class StudyResult:
    """Outcome of :func:`run_study`.

    Attributes:
        folder: The study folder.
        n_runs: Runs in the study.
        n_trained: Runs trained by this call.
        n_skipped: Runs already finished on disk and skipped.
    """

    folder: Path
    n_runs: int
    n_trained: int
    n_skipped: int


def run_study(
    study: StudyConfig,
    folder: Path,
    *,
    engine: str = "sequential",
    force: bool = False,
    progress: Progress | None = None,
) -> StudyResult:
    """Train every run of ``study`` that is not finished in ``folder``.

    Args:
        study: The validated study.
        folder: Study folder (created if missing; its parent must exist).
        engine: Name in :data:`~learnact.experiment.engines.ENGINES`.
        force: Retrain runs even if finished.
        progress: Called as ``progress(done, total, run_id)`` after each run.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; valid: {', '.join(sorted(ENGINES))}")
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise ConfigError(f"output folder's parent {str(folder.parent)!r} does not exist; create it first")
    folder.mkdir(exist_ok=True)
    (folder / "study.json").write_text(json.dumps(study.model_dump(mode="json"), indent=1))
    store.clean_partial(folder)
    runs = study.runs()
    todo = [r for r in runs if force or not store.is_done(folder, r)]
    done = len(runs) - len(todo)
    if progress:
        progress(done, len(runs), "")
    if todo:
        splits = prepare_splits(todo)
        for trained in ENGINES[engine](todo, splits):
            store.write_run(folder, build_artifacts(trained))
            done += 1
            if progress:
                progress(done, len(runs), trained.run.run_id)
    return StudyResult(folder, len(runs), len(todo), len(runs) - len(todo))
