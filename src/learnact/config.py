"""Typed, immutable configuration objects.

Configs validate on construction and report every problem at once (pydantic
v2, ``extra="forbid"``). :class:`RunConfig` is the fully resolved description
of one training run; its :attr:`RunConfig.run_id` is a stable id derived from
everything that affects the result.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ._checks import did_you_mean
from .exceptions import ConfigError

__all__ = [
    "ActivationConfig",
    "BackboneConfig",
    "DataConfig",
    "TrainConfig",
    "RunConfig",
    "VariantConfig",
    "StudyConfig",
    "TRAIN_FIELDS",
    "ACTIVATION_FIELDS",
    "format_validation_error",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class DataConfig(_Frozen):
    """Where the data comes from and how each seed splits it.

    ``dataset`` is a built-in name (``"breast_cancer"``) or the path of a CSV
    file; for a CSV, ``target`` names the label column (default: the last).
    Per seed: stratified train/test split (``test_size``), scaler fitted on the
    training part only, then a stratified train/validation split of the
    training part (``val_size``).
    """

    dataset: str = "breast_cancer"
    target: str | None = None
    test_size: float = Field(0.25, gt=0, lt=1)
    val_size: float = Field(0.2, gt=0, lt=1)


class BackboneConfig(_Frozen):
    """MLP widths: ``in -> hidden[0] -> ... -> hidden[-1] -> out``."""

    hidden: tuple[int, ...] = (64, 32)

    @field_validator("hidden")
    @classmethod
    def _widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("hidden must list at least one layer width")
        bad = [w for w in v if w < 1]
        if bad:
            raise ValueError(f"hidden widths must be >= 1, got {list(v)}")
        return v


class ActivationConfig(_Frozen):
    """What sits after each hidden Linear layer.

    ``kind="fixed"`` applies ``activation``; ``kind="gated"`` mixes
    ``candidates`` with ``softmax(z / temperature)`` gates of granularity
    ``gate``. Input-dependent gates read ``gate_source``: the network input
    (the paper's preset) or the layer's own input.
    """

    kind: Literal["fixed", "gated"] = "gated"
    activation: str = "relu"
    candidates: tuple[str, ...] = ("relu", "tanh", "sigmoid")
    gate: Literal["layer", "neuron", "input"] = "layer"
    gate_source: Literal["network", "layer"] = "network"
    gate_hidden: int = Field(16, ge=1)
    temperature: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _names(self) -> ActivationConfig:
        from .model.activations import get_candidate

        if self.kind == "fixed":
            get_candidate(self.activation)
        else:
            if not self.candidates:
                raise ValueError("candidates must name at least one activation, got []")
            for name in self.candidates:
                get_candidate(name)
            if len(set(self.candidates)) != len(self.candidates):
                raise ValueError(f"candidates must not repeat a name, got {list(self.candidates)}")
        return self

    def canonical(self) -> dict[str, Any]:
        """Only the fields that matter for this kind (used for run ids)."""
        if self.kind == "fixed":
            return {"kind": "fixed", "activation": self.activation}
        out = self.model_dump(exclude={"activation"})
        out["candidates"] = list(self.candidates)
        if self.gate != "input":
            out.pop("gate_source")
            out.pop("gate_hidden")
        return out


class TrainConfig(_Frozen):
    """Optimisation and early stopping (Adam with L2-in-gradient weight decay)."""

    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(64, ge=1)
    max_epochs: int = Field(300, ge=1)
    patience: int = Field(35, ge=1)
    min_delta: float = Field(1e-6, ge=0)
    entropy_weight: float = 0.0


TRAIN_FIELDS = tuple(TrainConfig.model_fields)
ACTIVATION_FIELDS = tuple(ActivationConfig.model_fields)


class RunConfig(_Frozen):
    """Everything one run needs: a variant's resolved settings and one seed."""

    variant: str
    seed: int
    data: DataConfig = DataConfig()
    backbone: BackboneConfig = BackboneConfig()
    activation: ActivationConfig = ActivationConfig()
    train: TrainConfig = TrainConfig()

    def fingerprint(self) -> str:
        """Hash of everything that affects the result (not the variant's name)."""
        payload = {
            "seed": self.seed,
            "data": self.data.model_dump(),
            "backbone": self.backbone.model_dump(mode="json"),
            "activation": self.activation.canonical(),
            "train": self.train.model_dump(),
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def run_id(self) -> str:
        """Stable folder name: ``<variant>__s<seed>__<fingerprint>``."""
        return f"{self.variant}__s{self.seed}__{self.fingerprint()}"


class VariantConfig(_Frozen):
    """A named variant: activation settings plus optional training overrides."""

    name: str
    activation: ActivationConfig = ActivationConfig()
    train: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or any(ch in v for ch in '/\\:*?"<>| '):
            raise ValueError(f"variant name must be non-empty without spaces or path characters, got {v!r}")
        return v

    @field_validator("train")
    @classmethod
    def _train_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key not in TRAIN_FIELDS:
                raise ValueError(f"unknown training field {key!r}{did_you_mean(key, TRAIN_FIELDS)}")
        return v


class StudyConfig(_Frozen):
    """A study: shared settings, seeds, and the (already expanded) variants."""

    name: str = "study"
    seeds: tuple[int, ...] = (1, 7, 21, 42, 99)
    data: DataConfig = DataConfig()
    backbone: BackboneConfig = BackboneConfig()
    train: TrainConfig = TrainConfig()
    variants: tuple[VariantConfig, ...]
    reference: str | None = None

    @model_validator(mode="after")
    def _unique(self) -> StudyConfig:
        names = [v.name for v in self.variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"variant names must be unique, repeated: {dup}")
        if not self.variants:
            raise ValueError("a study needs at least one variant")
        if not self.seeds:
            raise ValueError("a study needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must not repeat, got {list(self.seeds)}")
        if self.reference is not None and self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not a variant{did_you_mean(self.reference, names)}")
        return self

    def runs(self) -> list[RunConfig]:
        """One resolved :class:`RunConfig` per variant x seed (variant-major)."""
        out = []
        for v in self.variants:
            train = self.train.model_copy(update=v.train) if v.train else self.train
            train = TrainConfig.model_validate(train.model_dump())
            for seed in self.seeds:
                out.append(
                    RunConfig(
                        variant=v.name,
                        seed=seed,
                        data=self.data,
                        backbone=self.backbone,
                        activation=v.activation,
                        train=train,
                    )
                )
        return out


def format_validation_error(err: ValidationError, prefix: str = "") -> ConfigError:
    """One :class:`ConfigError` listing every problem with its field path."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if prefix:
            path = f"{prefix}.{path}"
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {msg}")
    return ConfigError("invalid config: " + "; ".join(lines))
