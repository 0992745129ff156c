"""Temperature schedules of gated mixtures: the temperature of each epoch.

A schedule moves a run's gate temperature from ``T0`` (its ``temperature``)
at epoch 1 to ``T1`` (``temperature_end``) at epoch ``E`` (its
``max_epochs``), with progress ``p = (e - 1) / (E - 1)`` (``p = 0`` when
``E = 1``):

- ``constant``: ``T0``;
- ``linear``: ``T0 + (T1 - T0) p``;
- ``exponential``: ``T0 (T1 / T0)^p`` (geometric: a constant factor per epoch);
- ``cosine``: ``T1 + (T0 - T1) (1 + cos(pi p)) / 2``.

The value is computed in double precision and stored in each gated layer's
float32 ``temperature`` buffer at the start of the epoch; it serves the
epoch's training steps and its validation pass. Early stopping does not
shorten a schedule (it is laid over ``max_epochs``), and the restored best
weights come with the temperature of their epoch. Both engines call
:meth:`TemperatureSchedule.at`, so they use the same float32 values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config import TEMPERATURE_SCHEDULES, ActivationConfig, TrainConfig
from ..model import MLP, GatedActivation

__all__ = ["TemperatureSchedule", "temperature_schedule", "set_temperature_", "recorded_temperatures",
           "recorded_values"]


@dataclass(frozen=True)
class TemperatureSchedule:
    """A gate temperature per epoch (see the module docstring for the formulas).

    Attributes:
        kind: One of :data:`~learnact.config.TEMPERATURE_SCHEDULES`.
        start: ``T0 > 0``, the temperature of epoch 1.
        end: ``T1 > 0``, the temperature of epoch ``epochs``.
        epochs: ``E >= 1``, the epoch at which ``end`` is reached.
    """

    kind: str
    start: float
    end: float
    epochs: int

    def __post_init__(self) -> None:
        if self.kind not in TEMPERATURE_SCHEDULES:
            raise ValueError(f"kind must be one of {', '.join(TEMPERATURE_SCHEDULES)}, got kind={self.kind!r}")
        if not (self.start > 0 and self.end > 0):
            raise ValueError(f"temperatures must be > 0, got start={self.start}, end={self.end}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got epochs={self.epochs}")

    def at(self, epoch: int) -> float:
        """The temperature of 1-based ``epoch`` (epochs past ``epochs`` keep ``end``)."""
        p = 0.0 if self.epochs == 1 else min(max((epoch - 1) / (self.epochs - 1), 0.0), 1.0)
        t0, t1 = self.start, self.end
        if self.kind == "linear":
            return t0 + (t1 - t0) * p
        if self.kind == "exponential":
            return t0 * (t1 / t0) ** p
        if self.kind == "cosine":
            return t1 + (t0 - t1) * (1.0 + math.cos(math.pi * p)) / 2.0
        return t0


def temperature_schedule(activation: ActivationConfig, train: TrainConfig) -> TemperatureSchedule | None:
    """The schedule of a run, or ``None`` when its temperature stays put (constant, or no gate)."""
    if activation.kind != "gated" or activation.temperature_schedule == "constant":
        return None
    assert activation.temperature_end is not None  # the config requires it for every other schedule
    return TemperatureSchedule(activation.temperature_schedule, activation.temperature, activation.temperature_end,
                               train.max_epochs)


def set_temperature_(model: MLP, value: float) -> None:
    """Write ``value`` into every gated layer's ``temperature`` buffer (float32, rounded to nearest)."""
    with torch.no_grad():
        for act in model.gated_layers():
            act.temperature.fill_(value)


def _recorded(value: float) -> float:
    """A float32 temperature as history records hold it: the shortest decimal that reads back as it (7 digits)."""
    return float(f"{value:.7g}")


def recorded_temperatures(model: MLP) -> list[float | None]:
    """Per hidden layer, the gate temperature as an epoch record holds it (``None`` without a gate)."""
    return [_recorded(float(a.temperature)) if isinstance(a, GatedActivation) else None for a in model.activations]


def recorded_values(values: Sequence[float]) -> list[float]:
    """:func:`recorded_temperatures`' rounding, for float32 values read off a stack."""
    return [_recorded(v) for v in values]
