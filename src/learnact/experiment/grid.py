"""Study files: load TOML/YAML, expand variant grids, validate everything at once.

A variant table lists activation fields (``kind``, ``activation``,
``candidates``, ``gate``, ``gate_source``, ``gate_hidden``, ``temperature``)
and training overrides (any :class:`~learnact.config.TrainConfig` field).
A list value sweeps that field (``temperature = [0.3, 0.7]``); ``candidates``
sweeps only when given a list of lists. ``name`` is a template filled with the
swept values (``"static_T{temperature}"``).
"""

from __future__ import annotations

import itertools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._checks import did_you_mean
from ..config import ACTIVATION_FIELDS, TRAIN_FIELDS, StudyConfig, VariantConfig, format_validation_error
from ..exceptions import ConfigError

__all__ = ["load_study", "study_from_dict", "expand_variant", "list_presets", "format_value"]

_LIST_FIELDS = {"candidates"}
_VARIANT_KEYS = ("name", *ACTIVATION_FIELDS, *TRAIN_FIELDS)


def list_presets() -> list[str]:
    """Names of the built-in study presets."""
    return sorted(p.name[:-5] for p in resources.files("learnact.presets").iterdir() if p.name.endswith(".toml"))


def format_value(v: Any) -> str:
    """Compact text of a swept value for generated names (``0.7``, ``1``, ``relu-tanh``)."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "-".join(format_value(x) for x in v)
    return str(v)


def _is_sweep(key: str, value: Any) -> bool:
    if not isinstance(value, list):
        return False
    if key in _LIST_FIELDS:
        return bool(value) and all(isinstance(x, list) for x in value)
    return True


def expand_variant(table: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Expand one variant table into its grid of plain variant dicts.

    Raises:
        ConfigError: Unknown keys (with a suggestion), an empty sweep, or a
            name template that does not make names unique.
    """
    problems = []
    for key in table:
        if key not in _VARIANT_KEYS:
            problems.append(f"{where}.{key}: unknown key{did_you_mean(key, _VARIANT_KEYS)}")
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))
    swept = [k for k, v in table.items() if k != "name" and _is_sweep(k, v)]
    for k in swept:
        if not table[k]:
            raise ConfigError(f"invalid config: {where}.{k}: a sweep needs at least one value, got []")
    template = table.get("name")
    if template is None:
        template = "_".join([str(table.get("kind", "gated"))] + [f"{k}{{{k}}}" for k in swept])
    out = []
    for combo in itertools.product(*(table[k] for k in swept)):
        values = dict(table)
        values.update(dict(zip(swept, combo, strict=True)))
        try:
            name = str(template).format(**{k: format_value(v) for k, v in values.items()})
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"invalid config: {where}.name: template {template!r} refers to unknown field {exc}") from None
        values["name"] = name
        out.append(values)
    names = [v["name"] for v in out]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"invalid config: {where}.name: template {template!r} gives repeated names; "
            f"include every swept field ({', '.join(swept)}) in it")
    return out


def _variant_config(values: dict[str, Any]) -> VariantConfig:
    act = {k: v for k, v in values.items() if k in ACTIVATION_FIELDS}
    train = {k: v for k, v in values.items() if k in TRAIN_FIELDS}
    return VariantConfig(name=values["name"], activation=act, train=train)


def study_from_dict(raw: dict[str, Any]) -> StudyConfig:
    """Build a validated :class:`StudyConfig` from a parsed study file."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config: expected a table at the top level, got {type(raw).__name__}")
    raw = dict(raw)
    tables = raw.pop("variants", None)
    if not isinstance(tables, list) or not tables:
        raise ConfigError("invalid config: variants: a study needs at least one [[variants]] table")
    problems: list[str] = []
    variants: list[VariantConfig] = []
    for i, table in enumerate(tables):
        where = f"variants[{i}]"
        if not isinstance(table, dict):
            problems.append(f"{where}: expected a table, got {type(table).__name__}")
            continue
        try:
            expanded = expand_variant(table, where)
        except ConfigError as exc:
            problems.append(str(exc).removeprefix("invalid config: "))
            continue
        for values in expanded:
            try:
                variants.append(_variant_config(values))
            except ValidationError as exc:
                problems.append(str(format_validation_error(exc, f"{where}({values['name']})"))
                                .removeprefix("invalid config: "))
    seeds = raw.get("seeds")
    if isinstance(seeds, dict):
        extra = set(seeds) - {"count", "base"}
        if extra or not isinstance(seeds.get("count"), int) or seeds["count"] < 1:
            problems.append("seeds: use a list of integers or {count = N, base = B} with N >= 1")
        else:
            raw["seeds"] = list(range(int(seeds.get("base", 0)), int(seeds.get("base", 0)) + seeds["count"]))
    try:
        study = StudyConfig.model_validate({**raw, "variants": variants}) if not problems else None
    except ValidationError as exc:
        problems.append(str(format_validation_error(exc)).removeprefix("invalid config: "))
        study = None
    if problems or study is None:
        raise ConfigError("invalid config: " + "; ".join(problems))
    return study


def load_study(source: str | Path) -> StudyConfig:
    """Load a study from a preset name (``"paper"``) or a ``.toml`` / ``.yaml`` file.

    Raises:
        ConfigError: Missing file, parse error, or any invalid field (all listed).
    """
    text_source = str(source)
    path = Path(text_source)
    if text_source in list_presets() and not path.exists():
        text = resources.files("learnact.presets").joinpath(f"{text_source}.toml").read_text()
        suffix = ".toml"
    else:
        if not path.is_file():
            raise ConfigError(
                f"config {text_source!r} is neither a file nor a preset; presets: {', '.join(list_presets())}")
        text = path.read_text()
        suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            raw = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raise ConfigError(f"config {text_source!r}: unknown file type {suffix!r}; use .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config {text_source!r} is not valid {suffix[1:].upper()}: {exc}") from None
    except Exception as exc:  # yaml.YAMLError
        raise ConfigError(f"config {text_source!r} is not valid YAML: {exc}") from None
    return study_from_dict(raw)
