"""Experiments: study files, engines, the runner.

The names load their modules on first use: ``learnact.experiment.grid`` (study
files) needs no torch, the engines and the runner do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .artifacts import TrainedRun, build_artifacts, predict_proba
    from .engines import ENGINES, build_model, prepare_splits, sequential_engine, train_group, train_one
    from .executors import EXECUTORS, ExecutorPool, InProcessExecutor, open_executor, run_group
    from .grid import list_presets, load_study, study_from_dict, study_to_dict
    from .lock import study_lock
    from .runner import DEFAULT_ENGINE, StudyResult, plan_groups, run_study

_EXPORTS = {
    "artifacts": ("TrainedRun", "build_artifacts", "predict_proba"),
    "engines": ("ENGINES", "build_model", "prepare_splits", "sequential_engine", "train_group", "train_one"),
    "executors": ("EXECUTORS", "ExecutorPool", "InProcessExecutor", "open_executor", "run_group"),
    "grid": ("list_presets", "load_study", "study_from_dict", "study_to_dict"),
    "lock": ("study_lock",),
    "runner": ("DEFAULT_ENGINE", "StudyResult", "plan_groups", "run_study"),
}
_MODULE_OF = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "EXECUTORS",
    "ExecutorPool",
    "InProcessExecutor",
    "StudyResult",
    "TrainedRun",
    "build_artifacts",
    "build_model",
    "list_presets",
    "load_study",
    "open_executor",
    "plan_groups",
    "predict_proba",
    "prepare_splits",
    "run_group",
    "run_study",
    "sequential_engine",
    "study_from_dict",
    "study_lock",
    "study_to_dict",
    "train_group",
    "train_one",
]

