"""Training: objective, random streams, history, reference loop."""

from .history import EpochRecord, divergence_reason
from .loop import FitResult, fit, gate_summary, weights_finite
from .objective import entropy_term, targets_tensor, task_loss
from .seeding import dataloader_permutation, run_generator

__all__ = [
    "EpochRecord",
    "FitResult",
    "dataloader_permutation",
    "divergence_reason",
    "entropy_term",
    "fit",
    "gate_summary",
    "run_generator",
    "targets_tensor",
    "task_loss",
    "weights_finite",
]
