"""Per-epoch training records, and what a diverged epoch's record says went wrong."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EpochRecord", "divergence_reason"]


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
        """The record as plain JSON types (the lists copied), as ``dataclasses.asdict`` gives it, ten times faster."""
        return {"epoch": self.epoch, "train_loss": self.train_loss, "train_task": self.train_task,
                "train_entropy": self.train_entropy, "val_loss": self.val_loss,
                "gate_weights": [None if w is None else list(w) for w in self.gate_weights],
                "gate_entropy": list(self.gate_entropy), "temperature": list(self.temperature)}


def divergence_reason(record: EpochRecord) -> str:
    """Why an epoch counts as diverged, read from its record alone.

    Every trainer stops a run at the first epoch whose training objective,
    validation loss or weights are not finite (``nan``/``inf``). The record
    shows the losses and the validation gate weights of each layer, so the
    reason names whichever of those is not finite; when all of them are
    finite, the weights were (the one trigger a record does not show). Both
    engines write bit-identical records, so they give the same reason.

    Args:
        record: The record of the epoch at which the run stopped.

    Returns:
        For example ``"non-finite training loss, validation loss and gate
        weights in layer 1"`` or ``"non-finite weights"``.
    """
    parts = []
    if not math.isfinite(record.train_loss):
        parts.append("training loss")
    if not math.isfinite(record.val_loss):
        parts.append("validation loss")
    layers = [str(i) for i, w in enumerate(record.gate_weights, start=1)
              if w is not None and not all(math.isfinite(v) for v in w)]
    if layers:
        parts.append(f"gate weights in layer{'s' if len(layers) > 1 else ''} {', '.join(layers)}")
    if not parts:
        parts.append("weights")
    text = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return f"non-finite {text}"
