"""Experiments: study files, engines, the runner."""

from .artifacts import TrainedRun, build_artifacts, predict_proba
from .engines import ENGINES, build_model, prepare_splits, sequential_engine, train_group, train_one
from .grid import list_presets, load_study, study_from_dict
from .runner import StudyResult, run_study

__all__ = [
    "ENGINES",
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
