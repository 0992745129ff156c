"""User code a study needs: plugin modules and candidates named by import path.

A plugin is a module a study lists (``plugins = ["mypkg.acts"]`` in a study
file, or ``learnact run --plugin mypkg.acts``); importing it registers the
user's candidates (:func:`learnact.register_candidate`) or families. A
candidate may also be named by its import path, ``"mypkg.acts:swish2"``: it
resolves in any process by importing ``mypkg.acts`` and taking ``swish2``,
so modules pickle by that name and reach every worker.

This module is torch-free: the syntax checks serve config validation, and
:func:`import_plugins` imports only what the study names. Plugins are
imported in the process that loads the study, in every ``--executor
processes`` worker and on every Dask worker before a task trains, and again
by ``learnact report`` / ``predict`` / a resumed run, which read them back
from ``study.json`` and each run's ``config.json``. They are not part of a
run's id: the same settings give the same runs whether a candidate came
from a plugin or not.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any

from .exceptions import ConfigError

__all__ = ["IMPORT_PATH_HINT", "check_import_path", "check_module_name", "import_plugins", "is_import_path",
           "resolve_import_path"]

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_MODULE = re.compile(rf"^{_DOTTED}$")
_PATH = re.compile(rf"^({_DOTTED}):({_DOTTED})$")

IMPORT_PATH_HINT = "write it as 'package.module:function'"


def is_import_path(name: object) -> bool:
    """Whether ``name`` is spelled as an import path (it holds a ``:``); see :func:`check_import_path`."""
    return isinstance(name, str) and ":" in name


def check_import_path(name: str) -> str:
    """``name`` if it is a well-formed ``module.path:attribute``.

    Raises:
        ValueError: A malformed path, naming it and the expected form.
    """
    if not _PATH.match(name):
        raise ValueError(f"candidate {name!r} is not a valid import path; {IMPORT_PATH_HINT} (Python identifiers "
                         f"joined by dots, one ':' before the function)")
    return name


def check_module_name(name: object) -> str:
    """``name`` if it is a well-formed dotted module name (``mypkg.acts``).

    Raises:
        ValueError: Not a string, or not identifiers joined by dots.
    """
    if not isinstance(name, str) or not _MODULE.match(name):
        raise ValueError(f"plugin {name!r} is not a module name; give an importable module such as 'mypkg.acts' "
                         f"(no file path, no ':')")
    return name


def _import(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        raise ConfigError(f"cannot import {what}: no module named {missing!r}; install its package or put its "
                          f"folder on PYTHONPATH (every worker needs it too)") from None
    except Exception as exc:  # the user's module raised while importing
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"cannot import {what}: importing {module!r} raised {type(exc).__name__}: {reason}; "
                          f"fix that module") from None


def import_plugins(modules: Sequence[str]) -> list[str]:
    """Import each plugin module (once per process; later calls find it in ``sys.modules``).

    Args:
        modules: Module names, as a study's ``plugins`` lists them (a list or tuple; a single string is refused,
            since it would read as its characters).

    Returns:
        The names imported now (not already loaded).

    Raises:
        ValueError: Not a list of module names.
        ConfigError: A module that is not found, or one that raised on import.
    """
    if not isinstance(modules, list | tuple):
        raise ValueError(f"expected a list of module names, got {modules!r}")
    fresh = []
    for name in modules:
        check_module_name(name)
        if name in sys.modules:
            continue
        _import(name, f"plugin {name!r}")
        fresh.append(name)
    return fresh


def resolve_import_path(name: str) -> Any:
    """The object an import path names: ``"mypkg.acts:swish2"`` -> ``mypkg.acts.swish2``.

    Raises:
        ValueError: A malformed path.
        ConfigError: The module is not found or raised, or has no such attribute.
    """
    check_import_path(name)
    module_name, attribute = name.split(":")
    obj = _import(module_name, f"candidate {name!r}")
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"cannot import candidate {name!r}: module {module_name!r} has no {attribute!r}; "
                              f"check the function's name") from None
    return obj
