"""Experiments: study files, engines, the runner."""

from .artifacts import TrainedRun, build_artifacts, predict_proba
from .engines import ENGINES, build_model, prepare_splits, sequential_engine, train_group, train_one
from .executors import EXECUTORS, ExecutorPool, InProcessExecutor, open_executor, run_group
from .grid import list_presets, load_study, study_from_dict, study_to_dict
from .lock import study_lock
from .runner import DEFAULT_ENGINE, StudyResult, plan_groups, run_study

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "EXECUTORS",
    "ExecutorPool",
    "InProcessExecutor",
    "open_executor",
    "plan_groups",
    "run_group",
    "study_lock",
    "study_to_dict",
    "StudyResult",
    "TrainedRun",
    "build_artifacts",
    "build_model",
    "list_presets",
    "load_study",
    "predict_proba",
    "prepare_splits",
    "run_study",
    "sequential_engine",
    "study_from_dict",
    "train_group",
    "train_one",
]
