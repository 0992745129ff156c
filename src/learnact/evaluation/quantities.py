"""What each column of the tidy results table measures: group, label, direction, unit.

Three groups of per-run quantities share the tidy table:

- ``"performance"``: the test metrics of :data:`~learnact.evaluation.metrics.METRICS`;
- ``"cost"``: trainable parameters, training wall time (``train_time_s``;
  a stacked run's share of its stack, also in ``stack_time_s``), what the
  variant costs trained alone (FLOPs per sample, step latency, activation
  memory per sample; :mod:`learnact.training.cost`), epochs, peak memory,
  and the best validation loss reached;
- ``"gate"``: gate diagnostics per gated hidden layer, named
  ``gate<layer>_<statistic>`` (for example ``gate1_entropy_mean``) and
  ``gate<layer>_argmax_<candidate>``; see :mod:`learnact.evaluation.diagnostics`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .metrics import METRICS

__all__ = ["Quantity", "COSTS", "MACHINE_QUANTITIES", "GATE_STATISTICS", "describe_quantity", "gate_quantity"]


@dataclass(frozen=True)
class Quantity:
    """How to read one per-run quantity.

    Attributes:
        name: Value of the ``metric`` column in the tidy table.
        label: Human-readable name for tables and figures.
        group: ``"performance"``, ``"cost"`` or ``"gate"``.
        higher_is_better: Direction of improvement; ``None`` when neither
            direction is better (gate diagnostics, epoch counts).
        fmt: Python format spec for display.
        unit: Unit for axis labels (``"s"``, ``"MB"``, ``"nats"``) or ``""``.
    """

    name: str
    label: str
    group: str
    higher_is_better: bool | None
    fmt: str = ".4f"
    unit: str = ""


COSTS: dict[str, Quantity] = {
    q.name: q
    for q in (
        Quantity("n_params", "Trainable parameters", "cost", False, ".0f"),
        Quantity("train_time_s", "Training time", "cost", False, ".2f", "s"),
        Quantity("stack_time_s", "Share of the stack's time", "cost", False, ".2f", "s"),
        Quantity("flops_per_sample", "FLOPs per sample (forward + backward)", "cost", False, ",.0f"),
        Quantity("step_latency_ms", "Training step latency (alone, 1 thread)", "cost", False, ".2f", "ms"),
        Quantity("activation_bytes_per_sample", "Activation memory per sample", "cost", False, ",.0f", "B"),
        Quantity("best_epoch", "Best epoch", "cost", None, ".1f", "epochs"),
        Quantity("epochs_run", "Epochs until early stop", "cost", False, ".1f", "epochs"),
        Quantity("peak_memory_mb", "Peak memory", "cost", False, ".1f", "MB"),
        Quantity("best_val_loss", "Best validation loss", "cost", False, ".4f"),
    )
}
"""Cost and training quantities read from ``metrics.json``."""

MACHINE_QUANTITIES = ("train_time_s", "stack_time_s", "step_latency_ms", "peak_memory_mb")
"""Costs that measure the machine and its load, not the result: they differ between two
trainings of the same run (and ``stack_time_s`` between engines)."""

GATE_STATISTICS: dict[str, tuple[str, str, str]] = {
    "entropy_mean": ("Gate entropy (mean over test samples)", ".4f", "nats"),
    "entropy_std": ("Gate entropy (std over test samples)", ".4f", "nats"),
    "max_weight_mean": ("Max gate weight (mean)", ".4f", ""),
    "max_weight_std": ("Max gate weight (std)", ".4f", ""),
    "max_weight_min": ("Max gate weight (min)", ".4f", ""),
    "effective_candidates": ("Effective candidates exp(H)", ".3f", ""),
    "collapsed": ("Collapsed (0/1)", ".0f", ""),
}
"""Per-layer gate statistics written to the tidy table: name -> (label, fmt, unit)."""

_GATE_RE = re.compile(r"^gate(\d+)_(.+)$")


def gate_quantity(layer: int, statistic: str) -> str:
    """Tidy-table name of a gate statistic, e.g. ``gate_quantity(1, "entropy_mean")``."""
    return f"gate{layer}_{statistic}"


def describe_quantity(name: str) -> Quantity:
    """Metadata of a tidy-table quantity by name.

    Args:
        name: A metric (``"roc_auc"``), a cost (``"train_time_s"``) or a gate
            statistic (``"gate2_max_weight_mean"``, ``"gate1_argmax_tanh"``).

    Raises:
        ValueError: The name is none of these; the message lists the valid names.
    """
    if name in METRICS:
        m = METRICS[name]
        return Quantity(m.name, m.label, "performance", m.higher_is_better, m.fmt)
    if name in COSTS:
        return COSTS[name]
    match = _GATE_RE.match(name)
    if match:
        layer, stat = int(match.group(1)), match.group(2)
        if stat in GATE_STATISTICS:
            label, fmt, unit = GATE_STATISTICS[stat]
            return Quantity(name, f"Layer {layer}: {label}", "gate", None, fmt, unit)
        if stat.startswith("argmax_") and len(stat) > len("argmax_"):
            cand = stat[len("argmax_"):]
            return Quantity(name, f"Layer {layer}: share arg-max {cand}", "gate", None, ".3f")
    valid = [*METRICS, *COSTS, *(f"gate<layer>_{s}" for s in GATE_STATISTICS), "gate<layer>_argmax_<candidate>"]
    raise ValueError(f"unknown quantity {name!r}; valid: {', '.join(valid)}")
