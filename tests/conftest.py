"""Shared test helpers."""

from __future__ import annotations

import os
import sys

import pytest
import torch

# Small models train fastest on one thread; keeps CI times predictable.
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


_REGISTRIES = {  # module -> the module-level registries a test may extend with register_*()
    "learnact.names": ("_candidates", "_family_params"),
    "learnact.model.activations.candidates": ("_REGISTRY", "_DERIVATIVES"),
    "learnact.model.activations.families": ("_FAMILIES",),
}


@pytest.fixture(autouse=True)
def _restore_registries():
    """Undo run-time registrations after each test.

    A test that registers a candidate or family must not leak it into later
    tests: contract tests iterate over the registries themselves, and a test
    family made from another family's class would fail them.
    """
    saved = {(mod, attr): getattr(sys.modules[mod], attr).copy()
             for mod, attrs in _REGISTRIES.items() if mod in sys.modules for attr in attrs}
    yield
    for (mod, attr), value in saved.items():
        current = getattr(sys.modules[mod], attr)
        current.clear()
        if isinstance(current, dict):
            current.update(value)
        else:
            current.extend(value)


@pytest.fixture()
def breast_cancer():
    from learnact.data import load_dataset

    return load_dataset("breast_cancer")


def reseal_run(folder) -> None:
    """Rewrite a run folder's MANIFEST.json and DONE after a test edited one of its files on purpose.

    Written here from the format's description (``learnact-run/2``: size and
    SHA-256 of every other file; DONE holds the manifest's SHA-256), not with
    the store's own code, so tests of the value checks also check the format.
    A folder without the ``.learnact-run`` marker has no manifest and is left as is.
    """
    import hashlib
    import json
    from pathlib import Path

    folder = Path(folder)
    if not (folder / ".learnact-run").is_file():
        return  # not a format-2 run folder: nothing seals it
    files = {}
    for p in sorted(folder.iterdir()):
        if p.name not in ("MANIFEST.json", "DONE"):
            data = p.read_bytes()
            files[p.name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    run_id = (folder / ".learnact-run").read_text().strip()
    raw = json.dumps({"format": "learnact-run/2", "run_id": run_id, "files": files}).encode()
    (folder / "MANIFEST.json").write_bytes(raw)
    (folder / "DONE").write_text(hashlib.sha256(raw).hexdigest() + "\n")


@pytest.fixture()
def reseal():
    """:func:`reseal_run`: make a deliberately edited run folder consistent with its manifest again."""
    return reseal_run
