"""Names a package exports but imports on first use (PEP 562), one definition for every such package.

The package root, :mod:`learnact.experiment` and :mod:`learnact.reporting`
list names whose modules are costly to import (torch, matplotlib): ``learnact
--help`` or reading a study file must not pay for them. A leaf module: it
imports nothing of learnact.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, tuple[str, ...]], namespace: MutableMapping[str, Any]
                 ) -> dict[str, str]:
    """Give ``package`` a module ``__getattr__`` and ``__dir__`` that import an exported name's module on first use.

    Args:
        package: The package's ``__name__``.
        exports: Submodule (relative, without the dot) -> the names it defines that the package exports.
        namespace: The package's ``globals()``; ``__getattr__`` and ``__dir__`` are set in it.

    Returns:
        Name -> submodule, for every exported name (the package keeps it as ``_MODULE_OF``).

    An unknown name raises ``AttributeError`` as a plain module does.
    """
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{module}", package), name)

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(module_of))

    namespace["__getattr__"], namespace["__dir__"] = __getattr__, __dir__
    return module_of
