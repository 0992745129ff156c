"""Training: objective, random streams, history, reference loop."""

from .history import EpochRecord
from .loop import FitResult, fit, gate_summary
from .objective import entropy_term, targets_tensor, task_loss
from .seeding import dataloader_permutation, run_generator

__all__ = [
    "EpochRecord",
    "FitResult",
    "dataloader_permutation",
    "entropy_term",
    "fit",
    "gate_summary",
    "run_generator",
    "targets_tensor",
    "task_loss",
]
