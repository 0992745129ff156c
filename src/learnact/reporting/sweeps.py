"""Sweeps found in a study from the variants' settings (never from their names).

A sweep over a field (the temperature ``T`` or the entropy weight ``lambda``)
is a set of gated variants whose resolved settings are identical except for
that field, with at least two distinct values of it. One study may hold
several sweeps over the same field (for example static and input-dependent
gates, each across temperatures); each becomes one series of the sweep figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..config import RunConfig
from .study_view import StudyView
from .style import FAMILY_LABELS, format_number, variant_family

__all__ = ["Sweep", "SWEEP_FIELDS", "find_sweeps"]

SWEEP_FIELDS: dict[str, tuple[str, str]] = {
    "temperature": ("Temperature T", "T"),
    "entropy_weight": ("Entropy weight \u03bb", "\u03bb"),
}
"""Swept fields: name -> (axis label, symbol)."""


@dataclass(frozen=True)
class Sweep:
    """One series of a sweep.

    Attributes:
        field: ``"temperature"`` or ``"entropy_weight"``.
        label: Readable series name (family and the settings held fixed).
        values: The swept values, ascending.
        variants: The variant at each value (same order as ``values``).
    """

    field: str
    label: str
    values: tuple[float, ...]
    variants: tuple[str, ...]


def _value(config: RunConfig, field: str) -> float:
    if field == "temperature":
        return float(config.activation.temperature)
    return float(config.train.entropy_weight)


def _key(config: RunConfig, field: str) -> str:
    act = config.activation.canonical()
    train = config.train.model_dump()
    (act if field == "temperature" else train).pop(field, None)
    payload = {"activation": act, "train": train, "backbone": config.backbone.model_dump(mode="json"),
               "data": config.data.model_dump()}
    return json.dumps(payload, sort_keys=True)


def _series_label(config: RunConfig, field: str) -> str:
    family = FAMILY_LABELS[variant_family(config)]
    if field == "temperature":
        return f"{family}, \u03bb={format_number(config.train.entropy_weight)}"
    return f"{family}, T={format_number(config.activation.temperature)}"


def find_sweeps(view: StudyView, field: str) -> list[Sweep]:
    """Every sweep over ``field`` among the study's gated variants.

    Args:
        view: The study.
        field: A key of :data:`SWEEP_FIELDS`.

    Returns:
        The sweeps, largest first; empty when the study sweeps nothing over ``field``.

    Raises:
        ValueError: ``field`` is not a sweepable field.
    """
    if field not in SWEEP_FIELDS:
        raise ValueError(f"unknown sweep field {field!r}; valid: {', '.join(SWEEP_FIELDS)}")
    groups: dict[str, list[str]] = {}
    for v in view.gated:
        groups.setdefault(_key(view.config(v), field), []).append(v)
    sweeps = []
    for members in groups.values():
        pairs = sorted(((_value(view.config(v), field), v) for v in members), key=lambda p: p[0])
        if len({p[0] for p in pairs}) < 2:
            continue
        sweeps.append(Sweep(field, _series_label(view.config(members[0]), field),
                            tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)))
    sweeps.sort(key=lambda s: -len(s.values))
    labels = [s.label for s in sweeps]
    return [Sweep(s.field, f"{s.label} ({s.variants[0]}, ...)" if labels.count(s.label) > 1 else s.label,
                  s.values, s.variants) for s in sweeps]
