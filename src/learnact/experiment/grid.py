"""Study files: load TOML/YAML/JSON, expand variant grids, validate everything at once.

A study file has top-level ``name``, ``seeds`` (a list, or
``{count = N, base = B}``), ``reference``, the tables ``data``, ``backbone``
and ``train`` (:mod:`learnact.config`), and a list of ``variants``. A variant
table lists activation fields (``kind``, ``activation``, ``candidates``,
``gate``, ``gate_source``, ``gate_hidden``, ``temperature``, and a learnable
family's ``params`` table) and training overrides (any
:class:`~learnact.config.TrainConfig` field). A list value sweeps that field
(``temperature = [0.3, 0.7]``); ``candidates`` sweeps only when given a list
of lists, ``params`` when given a list of tables. Several swept fields give
their full grid.
``name`` is a template filled with the values (``"static_T{temperature}"``);
without one, names are generated from the kind and the swept values
(``gated_T0.5_lam0.01``, ``fixed_relu``, ``gated_patience20``).

Every problem of a file is reported in one :class:`~learnact.exceptions.ConfigError`,
each with the path of its field (``variants[1].temperature[2]: must be > 0,
got 0``), before any data is read.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._checks import did_you_mean
from ..config import (
    ACTIVATION_FIELDS,
    MAX_CONFIG_DEPTH,
    MAX_CONFIG_VALUES,
    TEMPERATURE_SCHEDULES,
    TRAIN_FIELDS,
    StudyConfig,
    check_reference,
    check_run_count,
    check_variant_names,
    config_error,
    describe_errors,
)
from ..exceptions import ConfigError
from ..names import list_presets  # one definition, re-exported: the CLI's `list` reads it without torch

__all__ = [
    "load_study",
    "with_data",
    "study_from_dict",
    "study_to_dict",
    "expand_variant",
    "list_presets",
    "format_value",
    "grid_size",
    "STUDY_SUFFIXES",
]

STUDY_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
_LIST_FIELDS = {"candidates"}
_VARIANT_KEYS = ("name", *ACTIVATION_FIELDS, *TRAIN_FIELDS)
# generated names: `gated_T0.5_lam0.01`, `fixed_relu`; other swept fields appear as `<field><value>`
_NAME_PREFIX = {"temperature": "T", "entropy_weight": "lam", "activation": "", "candidates": "", "gate": "",
                "gate_source": "", "kind": "", "params": ""}


def format_value(v: Any) -> str:
    """Compact text of a swept value for generated names (``0.7``, ``1``, ``relu-tanh``, ``grid_size8-order2``)."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "-".join(format_value(x) for x in v)
    if isinstance(v, dict):  # a family's params table
        return "-".join(f"{k}{format_value(x)}" for k, x in v.items()) or "defaults"
    return str(v)


def _is_sweep(key: str, value: Any) -> bool:
    if not isinstance(value, list):
        return False
    if key in _LIST_FIELDS:
        return bool(value) and all(isinstance(x, list) for x in value)
    return True


def _expand(table: dict[str, Any],
            where: str) -> tuple[list[tuple[dict[str, Any], dict[str, int]]], list[str], bool]:
    """Expand one variant table; returns ``(values, sweep positions)`` per variant, the problems found, and
    whether the variants are named (their ``name`` template works).

    Unknown keys are reported and left out, so the rest of the table is still checked. A name template that
    cannot be filled or repeats names is reported and the variants are still expanded, each named
    ``<where>~<k>`` for now, so their fields are checked (and reported) with it.
    """
    problems = []
    known = {}
    for key, value in table.items():
        if key in _VARIANT_KEYS:
            known[key] = value
            continue
        hint = did_you_mean(str(key), _VARIANT_KEYS)
        valid = "" if hint else f"; valid keys: {', '.join(_VARIANT_KEYS)}"
        problems.append(f"{where}.{key}: unknown key{hint}{valid}")
    swept = [k for k, v in known.items() if k != "name" and _is_sweep(k, v)]
    for k in swept:
        if not known[k]:
            problems.append(f"{where}.{k}: a sweep needs at least one value, got []")
    template = known.get("name")
    if template is None:
        template = "_".join([format_value(known.get("kind", "gated"))]
                            + [f"{_NAME_PREFIX.get(k, k)}{{{k}}}" for k in swept])
    elif not isinstance(template, str):
        problems.append(f"{where}.name: expected a string, got {template!r} ({type(template).__name__})")
        template = None
    if any(not known[k] for k in swept):
        return [], problems, False
    out = []
    named = template is not None
    for combo in itertools.product(*(range(len(known[k])) for k in swept)):
        values = dict(known)
        values.update({k: known[k][j] for k, j in zip(swept, combo, strict=True)})
        if named and template is not None:
            try:
                values["name"] = template.format(**{k: format_value(v) for k, v in values.items()})
            except (KeyError, IndexError, ValueError, AttributeError) as exc:
                problems.append(f"{where}.name: template {template!r} cannot be filled ({exc!r}); use "
                                f"{{field}} with fields of this variant, e.g. {{temperature}}")
                named = False
        out.append((values, dict(zip(swept, combo, strict=True))))
    names = [v.get("name") for v, _ in out]
    if named and len(set(names)) != len(names):
        problems.append(f"{where}.name: template {template!r} gives repeated names; include every swept field "
                        f"({', '.join('{' + k + '}' for k in swept)}) in it")
        named = False
    if not named:  # the fields are still checked: every problem at once, not the rest after the name is fixed
        for i, (values, _) in enumerate(out):
            values["name"] = f"{where}~{i}"
    return out, problems, named


def grid_size(table: dict[str, Any]) -> int:
    """How many variants a variant table expands to (the product of its sweeps' lengths), without expanding it."""
    return math.prod(len(v) for k, v in table.items() if k in _VARIANT_KEYS and k != "name" and _is_sweep(k, v))


def _seed_count(seeds: Any) -> int | None:
    """How many seeds a study file's ``seeds`` value gives, without making the list (``None``: not readable)."""
    if isinstance(seeds, list):
        return len(seeds)
    if isinstance(seeds, dict) and isinstance(seeds.get("count"), int) and not isinstance(seeds["count"], bool):
        return seeds["count"]
    return None


def _shape_problem(raw: Any) -> str | None:
    """The problem with a parsed study file's shape, or ``None``.

    Lists and tables nested deeper than :data:`~learnact.config.MAX_CONFIG_DEPTH`
    (checked iteratively, so a file nested thousands deep is reported, not a
    ``RecursionError``), or more than :data:`~learnact.config.MAX_CONFIG_VALUES`
    values in all (YAML anchors can make a short file expand to billions).
    """
    stack: list[tuple[Any, int, str]] = [(raw, 0, "")]
    seen = 0
    while stack:
        value, depth, where = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_VALUES:
            return (f"(top level): the file holds more than {MAX_CONFIG_VALUES:,} values (MAX_CONFIG_VALUES), "
                    f"counting each use of a YAML alias; a study file needs far fewer")
        if not isinstance(value, (dict, list)):
            continue
        if depth >= MAX_CONFIG_DEPTH:
            return (f"{where or '(top level)'}: lists and tables nest more than {MAX_CONFIG_DEPTH} levels deep "
                    f"(MAX_CONFIG_DEPTH); a study file needs at most 5")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            sub = f"{where}[{key}]" if isinstance(key, int) else (f"{where}.{key}" if where else str(key))
            stack.append((item, depth + 1, sub))
    return None


def expand_variant(table: dict[str, Any], where: str = "variants[0]") -> list[dict[str, Any]]:
    """Expand one variant table into its grid of plain (flat) variant dicts.

    Args:
        table: One ``[[variants]]`` table.
        where: Its path, used in error messages.

    Raises:
        ConfigError: Unknown keys (with a suggestion), an empty sweep, or a
            name template that cannot be filled or does not make names unique.
    """
    out, problems, _ = _expand(table, where)
    if problems:
        raise config_error(problems)
    return [values for values, _ in out]


def _structured(values: dict[str, Any]) -> dict[str, Any]:
    """Flat variant values as :class:`~learnact.config.VariantConfig` input."""
    return {"name": values["name"],
            "activation": {k: v for k, v in values.items() if k in ACTIVATION_FIELDS},
            "train": {k: v for k, v in values.items() if k in TRAIN_FIELDS}}


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


GATED_ONLY = ("candidates", "gate", "gate_source", "gate_hidden", "temperature", "temperature_schedule",
              "temperature_end")
"""Variant fields that only a gated variant reads (``activation`` only a fixed one)."""


def _ignored_fields(values: dict[str, Any], where: str, swept: bool = False,
                   schedule_swept: bool = False) -> list[str]:
    """The gated-only fields a non-gated variant (``values``: one expanded variant) sets, each as a problem: a
    fixed variant's ``temperature`` or ``candidates`` was accepted and did nothing (its run id ignores them too,
    so a sweep over the kind and the temperature made identical fixed runs). A gated variant's ``activation`` is
    let be: a YAML anchor of a fixed variant merged into a gated one brings it, and a merge cannot drop a key.
    A gated variant's ``temperature_end`` under the constant schedule is one too, unless the table sweeps the
    schedule (constant against the annealed ones share it)."""
    kind = values.get("kind", "gated")
    if kind == "gated":
        schedule = values.get("temperature_schedule", "constant")
        if "temperature_end" in values and schedule == "constant" and not schedule_swept:
            # it would have trained at `temperature` throughout, silently: the schedule is what anneals (a sweep
            # over the schedule, constant against the annealed ones, shares its temperature_end on purpose)
            return [f"{where}.temperature_end: the constant temperature schedule does not use temperature_end; "
                    f"set temperature_schedule ({', '.join(s for s in TEMPERATURE_SCHEDULES if s != 'constant')}) "
                    "to anneal towards it, or drop it"]
        return []
    if not isinstance(kind, str):
        return []
    how = " (the sweep over kind gives it one)" if swept else ""
    return [f"{where}.{k}: a {kind} variant{how} does not use {k} (only gated variants do); drop it, or set the "
            f"variant's kind" for k in GATED_ONLY if k in values]


def study_from_dict(raw: Any) -> StudyConfig:
    """Build a validated :class:`StudyConfig` from a parsed study file.

    Raises:
        ConfigError: Every problem found, each with the path of its field.
    """
    problem = _shape_problem(raw)
    if problem:
        raise config_error([problem])
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config: expected a table of settings at the top level, got "
                          f"{type(raw).__name__}; start from `learnact init`")
    raw = dict(raw)
    problems: list[str] = []
    if raw.get("plugins"):  # first: a plugin registers the candidate names the variants below may use
        from ..plugins import import_plugins

        try:
            import_plugins(raw["plugins"])
        except ValueError as exc:  # ConfigError too
            raise config_error([f"plugins: {str(exc).removeprefix('invalid config: ')}"]) from None
    if "datasets" in raw:  # StudyConfig's own field, which the file spells under [data]
        problems.append("datasets: a suite lists its data sets under [data] (`datasets = [...]` in the [data] "
                        "table, `data: {datasets: [...]}` in YAML/JSON); move it there")
        raw.pop("datasets")
    raw = _suite_datasets(raw, problems)
    tables = raw.pop("variants", None)
    if tables is None:
        problems.append("variants: a study needs at least one variant ([[variants]] tables in TOML, "
                        "a list under `variants:` in YAML)")
        tables = []
    elif not isinstance(tables, list):
        problems.append(f"variants: expected a list of tables ([[variants]] in TOML), got {type(tables).__name__}")
        tables = []
    elif not tables:
        problems.append("variants: a study needs at least one variant, got []")
    # the size of the grid, before expanding it: 10**8 variants or seeds must fail here, not fill memory
    n_variants = sum(grid_size(t) for t in tables if isinstance(t, dict))
    problem = check_run_count(n_variants, max(1, _seed_count(raw.get("seeds")) or 1))
    if problem:
        raise config_error([problem])
    variants: list[dict[str, Any]] = []
    origins: list[tuple[int, dict[str, int]]] = []
    complete = True  # every table expanded and named: the variants' names are known
    for i, table in enumerate(tables):
        where = f"variants[{i}]"
        if not isinstance(table, dict):
            problems.append(f"{where}: expected a table of variant settings, got {table!r}")
            complete = False
            continue
        expanded, found, named = _expand(table, where)
        problems.extend(found)
        for values, _ in expanded:
            problems.extend(_ignored_fields(values, where, swept=isinstance(table.get("kind"), list),
                                            schedule_swept=isinstance(table.get("temperature_schedule"), list)))
        complete = complete and bool(expanded) and named
        for values, sweep_pos in expanded:
            variants.append(_structured(values))
            origins.append((i, sweep_pos))
    names = [v["name"] for v in variants]
    if names:
        problem = check_variant_names(names)
        if problem:
            problems.append(f"variants: {problem}")
    def path(loc: tuple[Any, ...]) -> str:
        if len(loc) >= 2 and loc[0] == "variants" and isinstance(loc[1], int) and loc[1] < len(origins):
            table_index, sweep_pos = origins[loc[1]]
            rest = loc[2:]
            if rest and rest[0] in ("activation", "train"):
                rest = rest[1:]
            where = f"variants[{table_index}]"
            if not rest:
                return where
            field, rest = rest[0], rest[1:]
            where += f".{field}"
            if field in sweep_pos:
                where += f"[{sweep_pos[field]}]"
            return where + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest)
        if loc and loc[0] == "datasets":  # a suite's entries live under [data] in the study file
            loc = ("data", *loc)
        return _loc_text(loc) or "(top level)"

    try:
        study = StudyConfig.model_validate({**raw, "variants": variants})
    except ValidationError as exc:
        study = None
        for loc, msg in describe_errors(exc, StudyConfig):
            if loc and loc[0] == "variants" and len(loc) == 1 and not variants:
                continue  # already reported above
            if loc and loc[0] == "data" and "datasets" in raw:
                continue  # a suite's data is its first entry, reported as data.datasets[0]
            if loc == ("reference",) and not complete and msg.startswith("no variant is named"):
                continue  # the names are not known yet (a variant's name template has a problem, reported)
            problems.append(f"{path(loc)}: {msg}")
    reference = raw.get("reference")
    if complete and names and isinstance(reference, str):
        # after the variants are checked: a typo in a swept value (`tanhh`) is in a generated name too, and then
        # the reference's problem follows from it
        variant_problems = any(p.startswith("variants") for p in problems)
        problem = check_reference(reference, names, variant_problems)
        if problem:
            problems = [p for p in problems if not p.startswith("reference:")] + [f"reference: {problem}"]
    if study is not None:
        problems.extend(_dataset_problems(study))
    unique = sorted(dict.fromkeys(problems), key=_section_rank)
    if unique or study is None:
        raise config_error(unique or ["study could not be built"])
    return study


_SECTIONS = ("name", "seeds", "reference", "data", "backbone", "train", "variants")


def _section_rank(problem: str) -> int:
    """Order problems as a study file reads: top-level keys, data, ..., variants (stable within)."""
    head = re.split(r"[.\[:]", problem, maxsplit=1)[0]
    return _SECTIONS.index(head) if head in _SECTIONS else len(_SECTIONS)


def _dataset_problems(study: StudyConfig) -> list[str]:
    """A CSV or Parquet data set must exist (checked without reading it)."""
    problems = []
    for i, data in enumerate(study.datasets or (study.data,)):
        dataset = data.dataset
        if dataset.lower().endswith((".csv", ".parquet")) and not Path(dataset).is_file():
            what = "CSV" if dataset.lower().endswith(".csv") else "Parquet"
            where = f"data.datasets[{i}]" if study.datasets else "data.dataset"
            problems.append(f"{where}: {what} file {dataset!r} does not exist (relative paths start in the folder "
                            f"learnact runs in, {str(Path.cwd())!r}); give an existing path")
    return problems


def _suite_datasets(raw: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """``[data] datasets = [...]`` spelled out: each entry (a name or a table) over the shared ``[data]`` settings.

    The study's ``data`` becomes the first entry and ``datasets`` the full list (:class:`StudyConfig`).
    """
    data = raw.get("data")
    if not isinstance(data, dict) or "datasets" not in data:
        return raw
    data = dict(data)
    entries = data.pop("datasets")
    if not isinstance(entries, list) or not entries:
        problems.append(f"data.datasets: expected a non-empty list of data set names or tables, got {entries!r}")
        return {**raw, "data": data}
    if "dataset" in data:
        problems.append("data.dataset: a suite lists its data sets in data.datasets; remove data.dataset")
        data.pop("dataset")
    spelled = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            spelled.append({**data, "dataset": entry})
        elif isinstance(entry, dict) and "dataset" in entry:
            spelled.append({**data, **entry})
        else:
            problems.append(f"data.datasets[{i}]: expected a data set name or a table with a dataset key, "
                            f"got {entry!r}")
    if not spelled:
        return {**raw, "data": data}
    return {**raw, "data": spelled[0], "datasets": spelled}


def with_data(study: StudyConfig, dataset: str | None = None, target: str | None = None,
              **options: Any) -> StudyConfig:
    """``study`` with its data replaced (``learnact run --data FILE --target COLUMN``), validated again.

    Args:
        study: A validated study (a preset, a file's, a folder's).
        dataset: A data set name or a CSV / Parquet path; ``None`` keeps the study's.
        target: The label column; with a new ``dataset`` it replaces the study's (``None``: the last column).
        options: Preprocessing options to set (``one_hot``, ``impute``, ``missing_indicators``); ``None`` values
            keep the study's.

    Raises:
        ConfigError: The new data settings are invalid (named as ``data.<field>``).
    """
    data = study.data.model_dump()
    if dataset is not None:
        data.update(dataset=dataset, target=target)
    elif target is not None:
        data["target"] = target
    data.update({k: v for k, v in options.items() if v is not None})
    return study_from_dict({**study_to_dict(study), "data": {k: v for k, v in data.items() if v is not None}})


def study_to_dict(study: StudyConfig) -> dict[str, Any]:
    """The resolved study in the study-file format: every variant spelled out, no sweeps.

    ``study_from_dict(study_to_dict(s))`` plans the same runs with the same
    ids as ``s``; the study folder keeps this as ``study.json``.
    """
    out: dict[str, Any] = {"name": study.name, "seeds": list(study.seeds)}
    if study.reference is not None:
        out["reference"] = study.reference
    out["data"] = study.data.dump(mode="json", exclude_none=True)
    if study.datasets:
        out["data"] = {"datasets": [d.dump(mode="json", exclude_none=True) for d in study.datasets]}
    out["backbone"] = study.backbone.model_dump(mode="json")
    out["train"] = study.train.model_dump(mode="json")
    out["variants"] = [
        {"name": v.name, **v.activation.canonical(), **v.train.model_dump(mode="json", exclude_none=True)}
        for v in study.variants
    ]
    if study.plugins:  # only when used: study.json of other studies is unchanged
        out["plugins"] = list(study.plugins)
    return out


class _DuplicateKey(Exception):
    """A key given twice in one table of a YAML or JSON study file (TOML's parser refuses these itself)."""

    def __init__(self, where: str, lines: tuple[int, ...] = ()) -> None:
        super().__init__(where)
        self.where = where
        self.lines = lines


def _yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that also reads ``1e-3`` as a number (YAML 1.1 reads it as text).

    Raises:
        _DuplicateKey: A mapping gives one key twice (PyYAML would keep the later value silently).
    """
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _yaml_duplicates(loader, node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_duplicates(loader: Any, root: Any) -> None:
    """Raise :class:`_DuplicateKey` for the first key given twice in one mapping of the composed ``root``.

    Keys compare as the values they load as (``1`` and ``01``, ``yes`` and ``true`` are one key); the keys a
    ``<<`` merge brings in may be overridden, as YAML defines. Each node is visited once (anchors, aliases).
    """
    import yaml

    unchecked = object()  # a merge key or a key that is not a scalar (a null key is checked: ``~`` is one)
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[Any, tuple[Any, ...]]] = []
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key: Any = unchecked
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    try:
                        key = loader.construct_object(key_node)
                        hash(key)
                    except (yaml.YAMLError, TypeError):
                        key = unchecked  # constructing the document reports it
                if key is not unchecked:
                    line = key_node.start_mark.line + 1
                    if key in first_line:
                        raise _DuplicateKey(_loc_text((*loc, str(key))), (first_line[key], line))
                    first_line[key] = line
                children.append((value_node, (*loc, "?" if key is unchecked else str(key))))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*loc, i)) for i, item in enumerate(node.value)]
        stack.extend(reversed(children))  # depth first, in file order: the first duplicate is reported


class _JSONObject(dict[str, Any]):
    """A JSON object that remembers the first key its text gave twice (``json`` keeps the later value)."""

    duplicate: str | None = None


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json``'s ``object_pairs_hook``: a plain dict, or a :class:`_JSONObject` naming the key given twice."""
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    marked = _JSONObject()
    for key, value in pairs:
        if key in marked and marked.duplicate is None:
            marked.duplicate = key
        marked[key] = value
    return marked


def _json_duplicate(value: Any, loc: tuple[Any, ...] = ()) -> str | None:
    """The path of the first key given twice in one object of parsed JSON, or ``None``.

    Iterative, depth first in file order: a parsed document may nest to the parser's recursion limit.
    """
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            if isinstance(item, _JSONObject) and item.duplicate is not None:
                return _loc_text((*where, item.duplicate))
            stack.extend(reversed([(v, (*where, k)) for k, v in item.items()]))
        elif isinstance(item, list):
            stack.extend(reversed([(v, (*where, i)) for i, v in enumerate(item)]))
    return None


def _parse(text: str, suffix: str, label: str) -> Any:
    try:
        return _parse_syntax(text, suffix, label)
    except RecursionError:  # the parsers recurse per level; the depth of a parsed file is checked in study_from_dict
        raise ConfigError(f"config {label!r} nests lists or tables too deeply to read (a study file needs at most "
                          f"5 levels, the limit is {MAX_CONFIG_DEPTH})") from None
    except _DuplicateKey as dup:
        lines = ""
        if dup.lines:
            first, again = dup.lines
            lines = f" (lines {first} and {again})" if first != again else f" (both on line {first})"
        raise ConfigError(f"config {label!r}: key {dup.where!r} is given twice{lines}, and only the later one "
                          "would be used; merge the two into one") from None


def _parse_syntax(text: str, suffix: str, label: str) -> Any:
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {label!r} is not valid TOML: {exc}; fix the syntax at that line") from None
    if suffix == ".json":
        try:
            parsed = json.loads(text, object_pairs_hook=_json_pairs)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config {label!r} is not valid JSON: {exc}; fix the syntax at that line") from None
        duplicate = _json_duplicate(parsed)
        if duplicate is not None:
            raise _DuplicateKey(duplicate)
        return parsed
    import yaml

    try:
        return _yaml_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {label!r} is not valid YAML: {exc}; fix the syntax at that line") from None


def load_study(source: str | Path) -> StudyConfig:
    """Load a study from a preset name (``"paper"``), a ``.toml`` / ``.yaml`` / ``.json`` file or a study folder.

    A ``str`` that names a preset (:func:`list_presets`) is always the shipped
    preset, whatever the current folder holds (a folder ``paper/`` of a
    LaTeX paper, an earlier study written to ``--out suite``); any other
    ``str`` and every :class:`~pathlib.Path` is a path: ``Path("paper")`` or
    ``"./paper"`` loads a file or study folder of that name. Nothing but the
    file is read: data sets are only checked by name (a CSV path must exist).

    Raises:
        ConfigError: Missing file, parse error, or any invalid field (all listed).
    """
    label = str(source)
    path = Path(label)
    presets = list_presets()
    if isinstance(source, str) and label in presets:
        text = resources.files("learnact.presets").joinpath(f"{label}.toml").read_text()
        suffix = ".toml"
    else:
        from ..store import STUDY_FILE, is_study_folder

        if is_study_folder(path):
            path = path / STUDY_FILE
        elif path.is_dir():
            which = "whose study.json learnact run did not write" if (path / STUDY_FILE).exists() else \
                "without study.json"
            raise ConfigError(f"config {label!r} is a folder {which}, so not a study folder; give a "
                              f"study file, a preset ({', '.join(presets)}) or a folder `learnact run` wrote")
        elif not path.is_file():
            raise ConfigError(
                f"config {label!r} is neither a file nor a preset{did_you_mean(label, presets)}; presets: "
                f"{', '.join(presets)}; or write an example file with `learnact init`")
        suffix = path.suffix.lower()
        if suffix not in STUDY_SUFFIXES:
            raise ConfigError(f"config {label!r}: unknown file type {suffix!r}; use one of {', '.join(STUDY_SUFFIXES)}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"config {label!r} cannot be read: {exc}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:  # a Latin-1 or UTF-16 export: say how to fix it, as read_table does
            line = data[:exc.start].count(b"\n") + 1
            raise ConfigError(f"config {label!r} is not UTF-8 text ({exc.reason} on line {line}); save it as "
                              "UTF-8") from None
    raw = _parse(text, suffix, label) if text.strip() else None
    if raw is None or raw == {}:  # an empty file, or one of comments only: YAML reads it as null, TOML as {}
        example = f"study{_INIT_SUFFIX.get(suffix, suffix)}"
        raise ConfigError(f"config {label!r} is empty (no settings); a study needs at least its variants "
                          f"({_VARIANTS_HINT[suffix]}); `learnact init {example}` writes a commented example")
    return study_from_dict(raw)


_VARIANTS_HINT = {".toml": "[[variants]] tables", ".yaml": "a list under `variants:`", ".yml": "a list under "
                  "`variants:`", ".json": 'a list under "variants"'}
_INIT_SUFFIX = {".json": ".toml"}  # `learnact init` writes TOML and YAML, which keep its comments
