"""Per-epoch training records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EpochRecord"]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: Sample-weighted mean training objective (task + lambda * entropy).
        train_task: Its task (cross-entropy) part.
        train_entropy: Sample-weighted mean of the summed layer gate entropies
            (nats; 0 without gated layers), before multiplying by lambda.
        val_loss: Validation task loss after the epoch (early-stopping criterion).
        gate_weights: Per hidden layer, the mean gate weights on the validation
            set (``None`` for a fixed layer).
        gate_entropy: Per hidden layer, the mean gate entropy in nats.
        temperature: Per hidden layer, the gate temperature of the epoch
            (:mod:`.schedules`; ``None`` for a layer without a gate).
    """

    epoch: int
    train_loss: float
    train_task: float
    train_entropy: float
    val_loss: float
    gate_weights: list[list[float] | None] = field(default_factory=list)
    gate_entropy: list[float | None] = field(default_factory=list)
    temperature: list[float | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
