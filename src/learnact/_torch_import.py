"""PyTorch for the ``learnact run`` process, imported without its meta-tensor kernels (private; a leaf module).

``import torch`` ends by importing ``torch._meta_registrations``: Python
kernels for the ``Meta`` dispatch key (tensors with shapes and no data), and
with them PyTorch's decompositions and reference implementations
(``torch._decomp``, ``torch._refs``). Tracing and compiling use them
(``torch.compile``, fake tensors, ``torch.export``); eager computation on the
CPU or a GPU never does, because those kernels are registered for the
``Meta`` key only. They were about 13% of the command's import of PyTorch
on the 2-core machine (1.65 against 1.43 CPU-s, medians of eight imports),
on the critical path of ``learnact run`` (training starts once torch is
loaded and the data helper is done).

:func:`import_torch` imports PyTorch with that one module left out, then
takes its placeholder away again: the first import of ``torch._decomp``,
``torch._refs`` or ``torch._meta_registrations`` afterwards (``torch.compile``,
fake tensors) loads the real module, which registers every kernel then. It first
imports what eager code needs of that module's imports (on PyTorch 2.13,
``torch._prims.rng_prims`` binds ``torch.Generator``'s metaclass) and checks
that a generator can be made; where anything fails, or the PyTorch release is
not one this was checked on (:data:`CHECKED_RELEASES`), or
``LEARNACT_TORCH_META=1`` is set, PyTorch is imported whole. Only the
command's own ``learnact run`` process calls it (on the CPU, without
plugins: their code may use anything of torch's); a library user's process
is left alone.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
from pathlib import Path

__all__ = ["CHECKED_RELEASES", "DEFERRED", "ENV", "import_torch"]

DEFERRED = "torch._meta_registrations"
"""The module :func:`import_torch` leaves to its first use."""

ENV = "LEARNACT_TORCH_META"
"""Environment variable: ``1`` imports PyTorch whole in ``learnact run`` (its meta kernels too)."""

CHECKED_RELEASES = ("2.13",)
"""PyTorch releases (major.minor) whose import :func:`import_torch` was checked on; others are imported whole."""

_EAGER_NEEDS = ("torch._prims.rng_prims",)
"""Modules that :data:`DEFERRED`'s imports load and eager code needs: ``torch.Generator()`` fails until
``torch._prims.rng_prims`` has set the generator's metaclass (PyTorch 2.13)."""


class _Placeholder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an empty module for :data:`DEFERRED`, while ``import torch`` runs."""

    def __init__(self) -> None:
        self.module: types.ModuleType | None = None

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name == DEFERRED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module

    def exec_module(self, module: types.ModuleType) -> None:
        self.module = module  # nothing run: nothing registered


class _FirstUse(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Loads :data:`DEFERRED` for real on the first import of it or of a package it loads (:data:`_ENTRIES`).

    PyTorch imports those modules in one order: :data:`DEFERRED` first,
    which loads ``torch._refs`` and ``torch._decomp`` part-way through its
    own import (imported first, ``torch._decomp`` fails on that cycle). So a
    first import of another entry loads :data:`DEFERRED` here, which loads
    the entry, and this finder hands the loaded module to the import system
    as its loader's module; the finder leaves the path at its first call.
    """

    def __init__(self) -> None:
        self._real: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name not in _ENTRIES:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        if name == DEFERRED or name in sys.modules:
            return None  # the ordinary finders load it, in PyTorch's own order
        importlib.import_module(DEFERRED)  # loads the entry too
        loaded = sys.modules.get(name)
        if loaded is None:  # not loaded by it on this PyTorch: the ordinary finders load it
            return None
        # The import system would run a module again from its own spec (found in sys.modules after the finder
        # returns): it gets this loader's spec instead, and exec_module puts the module's own spec back.
        self._real[name] = loaded.__spec__
        loaded.__spec__ = None
        return importlib.util.spec_from_loader(name, self, is_package=hasattr(loaded, "__path__"))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return sys.modules[spec.name]  # loaded already, by DEFERRED's import

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self._real.pop(module.__name__)  # nothing to run: it ran in DEFERRED's import


_ENTRIES = frozenset({DEFERRED, "torch._decomp", "torch._refs"})
"""Imports that load :data:`DEFERRED` first (it loads the others): the modules of that import cycle."""


def _release() -> str | None:
    """The installed PyTorch's major.minor, read from its ``torch/version.py`` without importing it (``None``:
    not found). importlib.metadata took about 0.05 s to find it."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"""^__version__\s*=\s*['"](\d+)\.(\d+)""", text, re.MULTILINE)
    return f"{found.group(1)}.{found.group(2)}" if found else None


def import_torch() -> bool:
    """Import PyTorch without :data:`DEFERRED` where that is safe (see the module's text), else whole.

    Returns:
        Whether :data:`DEFERRED` was left out (``False``: torch was loaded already, or imported whole).
    """
    if "torch" in sys.modules:
        return False
    if os.environ.get(ENV, "").strip() == "1" or _release() not in CHECKED_RELEASES:
        importlib.import_module("torch")
        return False
    finder = _Placeholder()
    sys.meta_path.insert(0, finder)
    try:
        torch = importlib.import_module("torch")
    finally:
        sys.meta_path.remove(finder)
        if finder.module is not None and sys.modules.get(DEFERRED) is finder.module:
            del sys.modules[DEFERRED]
    if finder.module is None:  # this PyTorch did not import it: nothing was left out
        return False
    attribute = DEFERRED.rpartition(".")[2]  # the import system set the submodule on its package too
    if getattr(torch, attribute, None) is finder.module:
        delattr(torch, attribute)
    try:
        for name in _EAGER_NEEDS:
            importlib.import_module(name)
        torch.Generator()
    except Exception:  # noqa: BLE001 - this PyTorch needs the module after all: load it as import torch would
        importlib.import_module(DEFERRED)
        return False
    sys.meta_path.insert(0, _FirstUse())
    return True
