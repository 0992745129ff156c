"""Translation of pydantic validation errors into one-line :class:`~learnact.exceptions.ConfigError` messages.

:func:`format_validation_error` names the path of each bad field, its value and
what is valid (``train.patience: must be >= 1, got 0``); the config schema
(:mod:`learnact.config`) re-exports it.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from ._checks import did_you_mean
from .exceptions import ConfigError

__all__ = ["describe_errors", "format_validation_error", "config_error"]


_TYPE_NAMES = {
    "int_type": "an integer", "float_type": "a number", "string_type": "a string", "bool_type": "true or false",
    "tuple_type": "a list", "list_type": "a list", "dict_type": "a table", "model_type": "a table",
    "model_attributes_type": "a table",
}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``tuple[VariantConfig, ...]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _locate(root: type[BaseModel], loc: Sequence[Any]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model holding the field at ``loc`` and that field's info (``None`` where unknown)."""
    model: type[BaseModel] | None = root
    info: FieldInfo | None = None
    names = [part for part in loc if not isinstance(part, int)]
    for i, part in enumerate(names):
        if model is None or part not in model.model_fields:
            return model, None
        info = model.model_fields[part]
        if i == len(names) - 1:
            return model, info
        model = _model_in(info.annotation)
    return model, info


def _range_text(info: FieldInfo | None, kind: str = "") -> str | None:
    """``must be in [1, 10]`` / ``must be >= 1`` for a field's bounds.

    An upper bound that is one of this module's limits (marked ``cap`` in the
    field's ``json_schema_extra``) is shown only when it is the one broken,
    with the limit's name: ``must be <= 1000000 (MAX_EPOCHS)``.
    """
    if info is None:
        return None
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    cap = extra.get("cap")
    if cap:
        bounds = [m for m in info.metadata if isinstance(m, (annotated_types.Le, annotated_types.Lt))]
        if kind in ("less_than", "less_than_equal") and bounds:
            bound = bounds[0]
            sign, value = ("<=", bound.le) if isinstance(bound, annotated_types.Le) else ("<", bound.lt)
            return f"must be {sign} {_num(value)} ({cap})"
        lows = [m for m in info.metadata if isinstance(m, (annotated_types.Ge, annotated_types.Gt))]
        if kind in ("greater_than", "greater_than_equal") and bounds and lows:  # a limit on both sides (float32)
            low, high = lows[0], bounds[0]
            least: Any = low.ge if isinstance(low, annotated_types.Ge) else low.gt
            most: Any = high.le if isinstance(high, annotated_types.Le) else high.lt
            if least == -most:
                return f"must be {'>=' if isinstance(low, annotated_types.Ge) else '>'} {_num(least)} ({cap})"
        info = FieldInfo.merge_field_infos(info)
        info.metadata = [m for m in info.metadata if not isinstance(m, (annotated_types.Le, annotated_types.Lt))]
    lo: tuple[str, Any] | None = None
    hi: tuple[str, Any] | None = None
    for m in info.metadata:
        if isinstance(m, annotated_types.Gt):
            lo = ("(", m.gt)
        elif isinstance(m, annotated_types.Ge):
            lo = ("[", m.ge)
        elif isinstance(m, annotated_types.Lt):
            hi = (")", m.lt)
        elif isinstance(m, annotated_types.Le):
            hi = ("]", m.le)
    if lo and hi:
        return f"must be in {lo[0]}{_num(lo[1])}, {_num(hi[1])}{hi[0]}"
    if lo:
        return f"must be {'>' if lo[0] == '(' else '>='} {_num(lo[1])}"
    if hi:
        return f"must be {'<' if hi[0] == ')' else '<='} {_num(hi[1])}"
    return None


def _num(v: Any) -> str:
    """A bound as written in a config: ``1000000`` for an integer, ``0.25`` / ``1e-06`` for a float."""
    return str(v) if isinstance(v, int) else f"{v:g}"


def _show(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters (a message stays one short line)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 20]}...{text[-10:]} ({len(text)} characters)"


def _got(value: Any) -> str:
    return f"got {_show(value)} ({type(value).__name__})"


def _message(e: Mapping[str, Any], root: type[BaseModel] | None) -> str:
    kind, value, loc = e["type"], e.get("input"), e["loc"]
    model, info = _locate(root, loc) if root is not None else (None, None)
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        valid = list(model.model_fields) if model is not None else []
        hint = did_you_mean(key, valid)
        return f"unknown key{hint}" + ("" if hint or not valid else f"; valid keys: {', '.join(valid)}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        text = _range_text(info, kind) or e["msg"].replace("Input should be", "must be")
        return f"{text}, got {_show(value)}"
    if kind == "literal_error":
        expected = e.get("ctx", {}).get("expected", "")
        options = [str(a) for a in typing.get_args(info.annotation)] if info is not None else []
        options = [o for a in options for o in ([a] if a != "NoneType" else [])]
        hint = did_you_mean(str(value), options) if options else ""
        return f"must be one of {expected.replace(' or ', ', ')}, got {_show(value)}{hint}"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, {_got(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_show(value)}"
    if kind == "missing":
        return "required key is missing"
    msg = e["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    return f"{msg}, got {_show(value)}"


def describe_errors(err: ValidationError, root: type[BaseModel] | None = None) -> list[tuple[tuple[Any, ...], str]]:
    """Each problem of ``err`` as ``(loc, message)``.

    Args:
        err: The pydantic error.
        root: The model that was validated; lets messages suggest keys and
            name valid ranges and options.
    """
    return [(tuple(e["loc"]), _message(e, root)) for e in err.errors()]


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def format_validation_error(err: ValidationError, prefix: str = "", root: type[BaseModel] | None = None,
                            path: Callable[[tuple[Any, ...]], str] | None = None) -> ConfigError:
    """One :class:`ConfigError` listing every problem with its field path.

    Args:
        err: The pydantic error.
        prefix: Put in front of every path (``"variants[2]"``).
        root: The model that was validated (better messages, see :func:`describe_errors`).
        path: Turns a ``loc`` into the path shown; default ``data.test_size``, ``hidden[1]``.
    """
    lines: list[str] = []
    for loc, msg in describe_errors(err, root):
        where = path(loc) if path is not None else _path(loc)
        if prefix:
            where = f"{prefix}.{where}" if where != "(top level)" else prefix
        line = f"{where}: {msg}"
        if line not in lines:
            lines.append(line)
    return config_error(lines)


def config_error(problems: Sequence[str]) -> ConfigError:
    """One :class:`ConfigError` for ``problems`` (``"path: message"`` each), numbered when several."""
    if len(problems) == 1:
        return ConfigError(f"invalid config: {problems[0]}")
    listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, start=1))
    return ConfigError(f"invalid config, {len(problems)} problems: {listed}")
