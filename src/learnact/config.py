"""Typed, immutable configuration objects.

Configs validate on construction and report every problem at once (pydantic
v2, strict types, ``extra="forbid"``). :class:`RunConfig` is the fully
resolved description of one training run; its :attr:`RunConfig.run_id` is a
stable id derived from everything that affects the result, so changing a field
changes the ids of exactly the runs it affects.

:func:`format_validation_error` (defined in :mod:`learnact._config_errors`) turns a pydantic error into one
:class:`~learnact.exceptions.ConfigError` whose message names the path of each
bad field, its value and what is valid (``train.patience: must be >= 1, got 0``).

Names (candidates, families, data sets) are checked against :mod:`learnact.names`
only, so validating a config imports neither torch nor matplotlib.
"""

from __future__ import annotations

import collections
import hashlib
import json
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from . import names
from ._checks import closest, did_you_mean
from ._config_errors import _got, _show, config_error, describe_errors, format_validation_error
from .exceptions import ConfigError
from .family_params import FLOAT32, MAX_FLOAT32, FamilyParams, Granularity, _Frozen

# Run settings the CLI shows; they live in the name registry now (experiment/ and cli/ both read them), and are
# re-exported here for imports written before the move.
from .names import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_ENGINE, EXECUTORS  # noqa: F401

__all__ = [
    "ActivationConfig",
    "FamilyParams",
    "Granularity",
    "BackboneConfig",
    "DataConfig",
    "TrainConfig",
    "TrainOverrides",
    "RunConfig",
    "VariantConfig",
    "StudyConfig",
    "TRAIN_FIELDS",
    "ACTIVATION_FIELDS",
    "MAX_SEED",
    "MAX_RUNS",
    "MAX_RUNS_ENV",
    "MAX_WIDTH",
    "MAX_HIDDEN_LAYERS",
    "MAX_HIDDEN_WEIGHTS",
    "MAX_EPOCHS",
    "MAX_NAME_BYTES",
    "MAX_CONFIG_DEPTH",
    "MAX_CONFIG_VALUES",
    "max_runs",
    "check_run_count",
    "TEMPERATURE_SCHEDULES",
    "SCHEDULE_FORMULAS",
    "check_variant_names",
    "check_reference",
    "describe_errors",
    "format_validation_error",
    "config_error",
]

MAX_SEED = 2**32 - 1
"""Largest seed: scikit-learn's ``random_state`` must fit in 32 bits."""

# Limits: a study file of a few lines must not be able to exhaust memory or the file system. Each is
# checked while the config is validated, before anything is allocated for it or written.
MAX_RUNS = 100_000
"""Most runs (variants x seeds) a study may expand to; override with the environment variable :data:`MAX_RUNS_ENV`.

Checked before the variant grid or the seed list is expanded, so ``seeds =
{count = 100000000}`` or a sweep of 10^8 variants fails at once instead of
filling memory.
"""
MAX_RUNS_ENV = "LEARNACT_MAX_RUNS"
"""Environment variable that replaces :data:`MAX_RUNS` (an integer >= 1), e.g. ``LEARNACT_MAX_RUNS=1000000``."""
MAX_WIDTH = 65_536
"""Most units in one hidden layer (``backbone.hidden``) or an input-dependent gate (``gate_hidden``)."""
MAX_HIDDEN_LAYERS = 64
"""Most hidden layers (entries of ``backbone.hidden``)."""
MAX_HIDDEN_WEIGHTS = 100_000_000
"""Most weights between hidden layers (sum of ``hidden[i] * hidden[i+1]``; 400 MB of float32 per model)."""
MAX_EPOCHS = 1_000_000
"""Largest ``train.max_epochs`` and ``train.patience``."""
MAX_NAME_BYTES = 100
"""Longest study or variant name, in UTF-8 bytes.

A variant's name starts each of its run folders' names (``<variant>__s<seed>__<hash>``,
25 more characters, and 13 more while the folder is written), and the study's
name starts the default study folder's name; file systems allow 255 bytes.
"""
MAX_CONFIG_DEPTH = 32
"""Deepest nesting of lists and tables in a study file (a valid one needs 5)."""
MAX_CONFIG_VALUES = 1_000_000
"""Most values (numbers, strings, lists, tables) in a parsed study file, each use of a YAML alias counted."""


def max_runs() -> int:
    """The run limit in force: :data:`MAX_RUNS`, or the value of the environment variable :data:`MAX_RUNS_ENV`.

    Raises:
        ConfigError: The environment variable is set but is not an integer >= 1.
    """
    import os

    text = os.environ.get(MAX_RUNS_ENV, "").strip()
    if not text:
        return MAX_RUNS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"environment variable {MAX_RUNS_ENV} must be an integer >= 1 (the most runs a study may "
                          f"have), got {text!r}; unset it to use the default {MAX_RUNS:,}")
    return value


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def check_run_count(n_variants: int, n_seeds: int) -> str | None:
    """The problem with a study of ``n_variants x n_seeds`` runs (too many, see :func:`max_runs`), or ``None``."""
    limit = max_runs()
    if n_variants * n_seeds <= limit:
        return None
    return (f"the study expands to {n_variants * n_seeds:,} runs ({_count(n_variants, 'variant')} x "
            f"{_count(n_seeds, 'seed')}), "
            f"more than the limit of {limit:,}; sweep fewer values or use fewer seeds (or raise the limit with "
            f"the environment variable {MAX_RUNS_ENV})")


PREPROCESSING_DEFAULTS: dict[str, Any] = {"one_hot": False, "impute": None, "missing_indicators": False,
                                          "task": None}
"""The options of :class:`DataConfig` added after run ids were fixed, and their defaults (left out of run ids)."""


class DataConfig(_Frozen):
    """Where the data comes from and how each seed splits it.

    ``dataset`` is a built-in name (``"breast_cancer"``, ``"wine"``) or the
    path of a CSV file; for a CSV, ``target`` names the label column (default:
    the last). Per seed: stratified train/test split (``test_size``), scaler
    fitted on the training part only, then a stratified train/validation split
    of the training part (``val_size``).

    Preprocessing, off by default and fitted on each training part only:
    ``one_hot`` encodes text columns (one 0/1 column per category),
    ``impute`` fills missing values (``"median"`` or ``"most_frequent"``; text
    columns take their most frequent value) and ``missing_indicators`` adds a
    0/1 column per column that had missing values. ``task`` makes a file's
    target a regression target (numbers; MSE loss, identity output); named
    data sets know their task.
    """

    dataset: str = "breast_cancer"
    target: str | None = None
    test_size: float = Field(0.25, gt=0, lt=1)
    val_size: float = Field(0.2, gt=0, lt=1)
    one_hot: bool = False
    impute: Literal["median", "most_frequent"] | None = None
    missing_indicators: bool = False
    task: Literal["classification", "regression"] | None = None

    @property
    def resolved_task(self) -> str:
        """``task``, else the named data set's own task, else ``"classification"`` (a file's labels)."""
        if self.task is not None:
            return self.task
        return "regression" if self.dataset in names.REGRESSION_DATASETS else "classification"

    def dump(self, **kwargs: Any) -> dict[str, Any]:
        """``model_dump(**kwargs)`` without the preprocessing options left at their defaults.

        Run ids and ``study.json`` of studies that preprocess nothing stay as
        they were before the options existed.
        """
        data = self.model_dump(**kwargs)
        for key, default in PREPROCESSING_DEFAULTS.items():
            if key in data and data[key] == default:
                del data[key]
        return data

    @model_validator(mode="after")
    def _indicators_need_imputation(self) -> DataConfig:
        if self.task is not None and self.dataset in names.BUILTIN_DATASETS:
            own = "regression" if self.dataset in names.REGRESSION_DATASETS else "classification"
            if self.task != own:
                raise ValueError(f"data.task = {self.task!r} contradicts data set {self.dataset!r}, a {own} task; "
                                 f"drop data.task")
        if self.missing_indicators and self.impute is None:
            raise ValueError("data.missing_indicators = true needs data.impute (\"median\" or \"most_frequent\"); "
                             "set it or drop missing_indicators")
        return self

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        BUILTIN_DATASETS = names.BUILTIN_DATASETS
        if v in BUILTIN_DATASETS or v.lower().endswith((".csv", ".parquet")):
            return v
        raise ValueError(f"unknown dataset {_show(v)}{did_you_mean(v, BUILTIN_DATASETS)}; "
                         f"use one of {', '.join(sorted(BUILTIN_DATASETS))} or a path ending in .csv or .parquet")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None, info: ValidationInfo) -> str | None:
        dataset = info.data.get("dataset")
        if v is not None and dataset in names.BUILTIN_DATASETS:
            raise ValueError(f"names the label column of a CSV data set; the built-in {dataset!r} has its own "
                             f"labels, got target = {_show(v)}: remove it")
        return v


class BackboneConfig(_Frozen):
    """MLP widths: ``in -> hidden[0] -> ... -> hidden[-1] -> out``."""

    hidden: tuple[int, ...] = Field((64, 32), strict=False)

    @field_validator("hidden")
    @classmethod
    def _widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("must list at least one layer width, got []")
        if any(w < 1 for w in v):
            raise ValueError(f"every width must be >= 1, got {list(v)}")
        if any(w > MAX_WIDTH for w in v):
            raise ValueError(f"every width must be <= {MAX_WIDTH} (MAX_WIDTH), got {list(v)}")
        if len(v) > MAX_HIDDEN_LAYERS:
            raise ValueError(f"must list at most {MAX_HIDDEN_LAYERS} layers (MAX_HIDDEN_LAYERS), got {len(v)}")
        weights = sum(a * b for a, b in zip(v, v[1:], strict=False))
        if weights > MAX_HIDDEN_WEIGHTS:
            raise ValueError(f"widths {list(v)} give {weights:,} weights between hidden layers, more than the "
                             f"limit of {MAX_HIDDEN_WEIGHTS:,} (MAX_HIDDEN_WEIGHTS); use narrower layers")
        return v


def _family_params_error(err: ValidationError, spec: type[FamilyParams], kind: str) -> ValidationError:
    """``err`` (from validating ``params`` against ``spec``) with the family's wording, same field paths."""
    lines: list[Any] = []
    for e, (loc, msg) in zip(err.errors(), describe_errors(err, spec), strict=True):
        if e["type"] == "extra_forbidden":
            key = str(loc[-1]) if loc else "?"
            msg = (f"not a parameter of family {kind!r}{did_you_mean(key, spec.model_fields)}; its parameters: "
                   f"{', '.join(spec.model_fields)}")
        lines.append({"type": "value_error", "loc": loc, "input": e.get("input"), "ctx": {"error": msg}})
    return ValidationError.from_exception_data(spec.__name__, lines)


ScheduleKind = Literal["constant", "linear", "exponential", "cosine"]
"""How a gated mixture's temperature moves from ``temperature`` to ``temperature_end`` over the epochs."""
TEMPERATURE_SCHEDULES: tuple[str, ...] = typing.get_args(ScheduleKind)
SCHEDULE_FORMULAS: dict[str, str] = {
    "constant": "T0",
    "linear": "T0 + (T1 - T0) p",
    "exponential": "T0 (T1 / T0)^p",
    "cosine": "T1 + (T0 - T1) (1 + cos(pi p)) / 2",
}
"""Each schedule's temperature at progress ``p = (epoch - 1) / (max_epochs - 1)`` in ``[0, 1]``, with
``T0 = temperature`` and ``T1 = temperature_end``, as text (for ``learnact list``; the code is
:meth:`learnact.training.schedules.TemperatureSchedule.at`, and a test pins one to the other)."""


def _check_candidate(name: str) -> str:
    return names.check_candidate(name)  # looked up per call: plugins register names later


# checked one by one, so a bad name's path names its entry: ``variants[1].candidates[1]``
_Candidate = Annotated[str, AfterValidator(_check_candidate)]


class ActivationConfig(_Frozen):
    """What sits after each hidden Linear layer.

    ``kind="fixed"`` applies ``activation``; ``kind="gated"`` mixes
    ``candidates`` with ``softmax(z / temperature)`` gates of granularity
    ``gate``. Input-dependent gates read ``gate_source``: the network input
    (the paper's preset) or the layer's own input. Any other ``kind`` names a
    learnable family (``prelu``, ``swish``, ``rational``, ``pwl``, ``maxout``,
    ``kernel``, ``neural``, ``spline``; see
    :mod:`learnact.model.activations.families`) and ``params`` holds its
    hyper-parameters (``{"granularity": "unit", "grid_size": 8}``), checked
    against that family's :class:`FamilyParams`; missing ones take the
    family's defaults. ``params`` keeps only the values that differ from those
    defaults, so spelling a default out changes no run id.

    ``temperature_schedule`` anneals a gated mixture's temperature from
    ``temperature`` (epoch 1) to ``temperature_end`` (epoch ``max_epochs``):
    ``"constant"`` (the default; ``temperature_end`` is not used), ``"linear"``,
    ``"exponential"`` (geometric) or ``"cosine"``; see
    :mod:`learnact.training.schedules` for the formulas.
    """

    kind: str = "gated"
    activation: str = "relu"
    candidates: tuple[_Candidate, ...] = Field(("relu", "tanh", "sigmoid"), strict=False)
    gate: Literal["layer", "neuron", "input"] = "layer"
    gate_source: Literal["network", "layer"] = "network"
    gate_hidden: int = Field(16, ge=1, le=MAX_WIDTH, json_schema_extra={"cap": "MAX_WIDTH"})
    temperature: float = Field(1.0, gt=0, le=MAX_FLOAT32, json_schema_extra=FLOAT32)
    temperature_schedule: ScheduleKind = "constant"
    temperature_end: float | None = Field(None, gt=0, le=MAX_FLOAT32, json_schema_extra=FLOAT32)
    params: dict[str, Any] = Field(default_factory=dict)

    def __hash__(self) -> int:  # ``params`` is a dict; hash the (immutable) dumped config instead
        return hash(json.dumps(self.model_dump(mode="json"), sort_keys=True))

    @field_validator("temperature_end")
    @classmethod
    def _temperature_end(cls, v: float | None, info: ValidationInfo) -> float | None:
        schedule = info.data.get("temperature_schedule")
        if v is None and schedule not in (None, "constant"):
            raise ValueError(f"temperature_schedule {schedule!r} needs temperature_end (the temperature at the "
                             "last epoch, > 0), got none")
        return v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        valid = ["fixed", "gated", *names.list_families()]
        if v not in valid:
            raise ValueError(f"must be one of {', '.join(valid)}, got {_show(v)}{did_you_mean(v, valid)}")
        return v

    @field_validator("activation")
    @classmethod
    def _activation(cls, v: str) -> str:
        return names.check_candidate(v)  # unknown names raise, listing the valid ones

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("must name at least one activation, got []")
        if len(set(v)) != len(v):
            raise ValueError(f"must not repeat a name, got {list(v)}")
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is invalid and reported
            return v
        if kind in ("fixed", "gated"):
            if v:
                raise ValueError(f"only the learnable families ({', '.join(names.list_families())}) take params; "
                                 f"kind {kind!r} has its own fields, got {v!r}")
            return v
        spec = names.family_params_model(kind)
        try:
            resolved = spec.model_validate(v)
        except ValidationError as err:
            raise _family_params_error(err, spec, kind) from None
        return resolved.model_dump(mode="json", exclude_defaults=True)

    def family_params(self) -> FamilyParams:
        """The learnable family's hyper-parameters, defaults filled in.

        Raises:
            ValueError: ``kind`` is ``"fixed"`` or ``"gated"`` (no family).
        """
        if self.kind in ("fixed", "gated"):
            raise ValueError(f"kind {self.kind!r} is not a learnable family; it has no family params")
        return names.family_params_model(self.kind).model_validate(self.params)

    def canonical(self) -> dict[str, Any]:
        """Only the fields that matter for this kind (used for run ids).

        A family's ``params`` appear only when some differ from the family's
        defaults, so the ids of runs at the defaults are those of the versions
        before families took parameters.
        """
        if self.kind == "fixed":
            return {"kind": "fixed", "activation": self.activation}
        if self.kind != "gated":
            return {"kind": self.kind, **({"params": dict(sorted(self.params.items()))} if self.params else {})}
        out = self.model_dump(exclude={"activation", "params"})
        out["candidates"] = list(self.candidates)
        if self.temperature_schedule == "constant":  # the default: run ids as before schedules existed
            del out["temperature_schedule"], out["temperature_end"]
        if self.gate != "input":
            out.pop("gate_source")
            out.pop("gate_hidden")
        return out


class TrainConfig(_Frozen):
    """Optimisation and early stopping (Adam with L2-in-gradient weight decay).

    ``weight_decay_activations = false`` exempts the activations' parameters
    (gate logits, input-gate heads, learnable families' parameters) from weight
    decay, which otherwise pulls gate logits toward a uniform mixture and, for
    instance, PReLU slopes toward zero; the default decays every parameter, as
    the paper does.
    """

    lr: float = Field(1e-3, gt=0, le=MAX_FLOAT32, json_schema_extra=FLOAT32)
    weight_decay: float = Field(1e-4, ge=0, le=MAX_FLOAT32, json_schema_extra=FLOAT32)
    batch_size: int = Field(64, ge=1)
    max_epochs: int = Field(300, ge=1, le=MAX_EPOCHS, json_schema_extra={"cap": "MAX_EPOCHS"})
    patience: int = Field(35, ge=1, le=MAX_EPOCHS, json_schema_extra={"cap": "MAX_EPOCHS"})
    min_delta: float = Field(1e-6, ge=0)
    entropy_weight: float = Field(0.0, ge=-MAX_FLOAT32, le=MAX_FLOAT32, json_schema_extra=FLOAT32)
    weight_decay_activations: bool = True


def _optional_fields(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s fields as ``Optional`` with default ``None`` and the same constraints."""
    # Optional[...] here builds a type at run time from any annotation (``X | None`` needs a class on the left)
    return {name: (Optional[info.annotation], FieldInfo.merge_field_infos(info, default=None))  # noqa: UP045
            for name, info in model.model_fields.items()}


TrainOverrides: type[BaseModel] = create_model(
    "TrainOverrides",
    __base__=_Frozen,
    __doc__="A variant's changes to the study's :class:`TrainConfig` (``None``: inherit).",
    **_optional_fields(TrainConfig),
)

TRAIN_FIELDS = tuple(TrainConfig.model_fields)
ACTIVATION_FIELDS = tuple(ActivationConfig.model_fields)


def dataset_label(dataset: str) -> str:
    """A data set's short name: the name itself, or a file's stem (``data/cells.csv`` -> ``cells``),
    with any character other than letters, digits, ``_`` and ``-`` replaced by ``-`` (it is part of run ids)."""
    stem = dataset
    if dataset.lower().endswith((".csv", ".parquet")):
        stem = dataset.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return "".join(ch if ch.isalnum() or ch in "_-" else "-" for ch in stem) or "data"


def _imported_plugins(data: Any) -> Any:
    """Import the plugin modules a config lists before its fields are validated (a ``before`` validator)."""
    if isinstance(data, dict) and data.get("plugins"):
        from .plugins import import_plugins

        import_plugins(data["plugins"])
    return data


class RunConfig(_Frozen):
    """Everything one run needs: a variant's resolved settings and one seed.

    ``suite_dataset`` is the data set's label (:func:`dataset_label`) when the
    run belongs to a suite of several data sets; it names the run, and the
    fingerprint (which already holds the data settings) ignores it.
    ``plugins`` are the study's plugin modules (:mod:`learnact.plugins`),
    imported before the rest is validated, so a plugin's candidate names are
    known; the fingerprint ignores them too.
    """

    variant: str
    seed: int = Field(ge=0, le=MAX_SEED)
    data: DataConfig = Field(default_factory=DataConfig)
    backbone: BackboneConfig = Field(default_factory=BackboneConfig)
    activation: ActivationConfig = Field(default_factory=ActivationConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    suite_dataset: str | None = None
    plugins: tuple[str, ...] = Field((), strict=False)

    _import_plugins = model_validator(mode="before")(lambda data: _imported_plugins(data))

    def _data_identity(self) -> dict[str, Any]:
        """The data config as the fingerprint sees it: preprocessing options only when on (run ids as before)."""
        return self.data.dump()

    def fingerprint(self) -> str:
        """Hash of everything that affects the result (not the variant's name)."""
        train = self.train.model_dump()
        if train["weight_decay_activations"]:  # the default: run ids as before the option existed
            del train["weight_decay_activations"]
        payload = {
            "seed": self.seed,
            "data": self._data_identity(),
            "backbone": self.backbone.model_dump(mode="json"),
            "activation": self.activation.canonical(),
            "train": train,
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def run_id(self) -> str:
        """Stable folder name: ``<variant>__s<seed>__<fingerprint>``; in a suite ``<variant>__<data set>__s...``."""
        if self.suite_dataset is not None:
            return f"{self.variant}__{self.suite_dataset}__s{self.seed}__{self.fingerprint()}"
        return f"{self.variant}__s{self.seed}__{self.fingerprint()}"


def _check_name(v: str, what: str) -> str:
    if not v or any(ch in v for ch in '/\\:*?"<>| ') or v.startswith("."):
        raise ValueError(f"{what} must be non-empty, not start with '.', and have no spaces or path "
                         f"characters (/\\:*?\"<>|), got {_short(v)}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in v):
        raise ValueError(f"{what} must not contain control characters, got {_short(v)}")
    try:
        size = len(v.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON) cannot name a file
        raise ValueError(f"{what} must be valid Unicode text, got {_short(v)}") from None
    if size > MAX_NAME_BYTES:
        raise ValueError(f"{what} must be at most {MAX_NAME_BYTES} bytes (MAX_NAME_BYTES; it names folders), got "
                         f"{size} bytes: {_short(v)}; give a shorter name")
    return v


def _short(v: str, keep: int = 40) -> str:
    """``repr(v)``, cut in the middle when long."""
    return repr(v) if len(v) <= 2 * keep else f"{v[:keep]!r}...{v[-10:]!r} ({len(v)} characters)"


class VariantConfig(_Frozen):
    """A named variant: activation settings plus optional training overrides."""

    name: str
    activation: ActivationConfig = Field(default_factory=ActivationConfig)
    train: TrainOverrides = Field(default_factory=TrainOverrides)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "variant name")

    @field_serializer("train")
    def _dump_train(self, v: BaseModel) -> dict[str, Any]:
        return v.model_dump(exclude_none=True)

    def resolve_train(self, base: TrainConfig) -> TrainConfig:
        """``base`` with this variant's overrides applied."""
        changes = self.train.model_dump(exclude_none=True)
        return TrainConfig.model_validate({**base.model_dump(), **changes}) if changes else base


def check_variant_names(names: Sequence[str]) -> str | None:
    """The problem with a study's variant names (empty list, repeats), or ``None``."""
    if not names:
        return "a study needs at least one variant"
    dup = sorted(n for n, k in collections.Counter(names).items() if k > 1)
    if dup:
        return f"variant names must be unique, repeated: {_show(dup)}; give each variant its own name"
    return None


def check_reference(reference: str, names: Sequence[str], variants_have_problems: bool = False) -> str | None:
    """The problem with a study's reference variant (not one of ``names``), or ``None``.

    A close name is shown as the closest, not as the fix: the misspelled name may be the variant's
    (``baseline_tanhh``, from an activation typo ``tanhh``) as well as the reference's. With
    ``variants_have_problems`` the names may still change as those problems are fixed, and the message says so.
    """
    if reference in names:
        return None
    listed = ", ".join(names)
    if variants_have_problems:
        return (f"no variant is named {reference!r}; variants as the file names them now: {listed}; fix the "
                "variants' problems first, they may change these names")
    close = closest(reference, names)
    if close is not None:
        return (f"no variant is named {reference!r}; variants: {listed}; the closest is {close!r}: correct "
                "whichever of the two names is misspelled")
    return f"no variant is named {reference!r}; variants: {listed}; set reference to one of them"


class StudyConfig(_Frozen):
    """A study: shared settings, seeds, and the (already expanded) variants.

    ``seeds`` is a list of integers, or ``{"count": n, "base": b}`` for
    ``b, b+1, ..., b+n-1``. ``datasets`` makes it a suite: every variant and
    seed on each data set (``[data] datasets = [...]`` in a study file, each
    entry a name or a table of its own data settings); ``data`` is then the
    first of them. ``plugins`` lists modules to import first (a user's
    candidates and families; :mod:`learnact.plugins`).
    """

    name: str = "study"
    seeds: tuple[int, ...] = Field((1, 7, 21, 42, 99), strict=False)
    data: DataConfig = Field(default_factory=DataConfig)
    datasets: tuple[DataConfig, ...] = Field((), strict=False)
    backbone: BackboneConfig = Field(default_factory=BackboneConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    variants: tuple[VariantConfig, ...] = Field(strict=False)
    reference: str | None = None
    plugins: tuple[str, ...] = Field((), strict=False)

    _import_plugins = model_validator(mode="before")(lambda data: _imported_plugins(data))

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "study name")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_range(cls, v: Any) -> Any:
        if isinstance(v, dict):
            extra = sorted(set(v) - {"count", "base"})
            count, base = v.get("count"), v.get("base", 0)
            if (extra or not isinstance(count, int) or not isinstance(base, int) or isinstance(count, bool)
                    or isinstance(base, bool) or count < 1 or base < 0):
                raise ValueError(f"as a table must be {{count = N, base = B}} with integers N >= 1 and "
                                 f"B >= 0 (base defaults to 0), got {_show(v)}")
            if base + count - 1 > MAX_SEED:
                raise ValueError(f"must stay below 2**32: base + count - 1 = {base + count - 1} > {MAX_SEED} "
                                 f"(MAX_SEED), got {_show(v)}")
            problem = check_run_count(1, count)  # before the list is made: count = 10**8 would fill memory
            if problem:
                raise ValueError(problem)
            return list(range(base, base + count))
        if v is None or isinstance(v, (str, bytes, int, float)):  # `seeds = 3`: name both forms, not only the list
            raise ValueError(f"expected a list of seeds ([1, 7, 21]) or a table {{count = N, base = B}} "
                             f"(N seeds B, B+1, ...), {_got(v)}")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("must list at least one seed, got []")
        bad = [s for s in v if not 0 <= s <= MAX_SEED]
        if bad:
            raise ValueError(f"must be integers in [0, {MAX_SEED}], got {_show(bad)}")
        if len(set(v)) != len(v):
            raise ValueError(f"must not repeat, got {_show(list(v))}")
        return v

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, v: tuple[DataConfig, ...]) -> tuple[DataConfig, ...]:
        labels = [dataset_label(d.dataset) for d in v]
        dup = sorted(n for n, k in collections.Counter(labels).items() if k > 1)
        if dup:
            raise ValueError(f"each data set of a suite must be listed once (by name or file name), repeated: "
                             f"{_show(dup)}")
        return v

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: tuple[VariantConfig, ...], info: ValidationInfo) -> tuple[VariantConfig, ...]:
        problem = check_variant_names([x.name for x in v])
        if problem:
            raise ValueError(problem)
        seeds = info.data.get("seeds")
        if seeds is not None:
            problem = check_run_count(len(v) * max(1, len(info.data.get("datasets") or ())), len(seeds))
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("reference")
    @classmethod
    def _reference(cls, v: str | None, info: ValidationInfo) -> str | None:
        variants = info.data.get("variants")
        if v is not None and variants is not None:
            problem = check_reference(v, [x.name for x in variants])
            if problem:
                raise ValueError(problem)
        return v

    def runs(self) -> list[RunConfig]:
        """One resolved :class:`RunConfig` per variant x seed (variant-major), for each data set of a suite."""
        out = []
        for data in self.datasets or (self.data,):
            label = dataset_label(data.dataset) if self.datasets else None
            for v in self.variants:
                train = v.resolve_train(self.train)
                for seed in self.seeds:
                    out.append(RunConfig(variant=v.name, seed=seed, data=data, backbone=self.backbone,
                                         activation=v.activation, train=train, suite_dataset=label,
                                         plugins=self.plugins))
        return out

    @property
    def dataset_labels(self) -> list[str]:
        """The data sets' labels (as in run ids), in study order; one for a single-data-set study."""
        return [dataset_label(d.dataset) for d in (self.datasets or (self.data,))]
