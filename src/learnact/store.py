"""The run store (the on-disk format every stage reads): one folder per run, written atomically, finished by DONE.

Layout of a study folder::

    study.json              resolved study config (a study file: `learnact run -c` reads it)
    study.log               one line per event of every session on this folder
    .lock                   held (flock) by the process running the study
    runs/<run_id>/          config.json, history.jsonl, metrics.json,
                            predictions.csv, gates.json, weights.safetensors,
                            preprocessing.json, DONE (written last)
    superseded/<run_id>/    finished runs the current study no longer plans
                            (moved back if a later study plans them again)

A run folder is first written under ``runs/.tmp-<run_id>-<pid>`` and renamed
into place, so a killed process never leaves a folder that looks finished; a
folder being replaced is first renamed to ``runs/.old-...``. Names starting
with ``.`` are never runs, and :func:`clean_partial` removes them.
Loading never unpickles: weights are safetensors, everything else is JSON/CSV.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from .config import RunConfig
from .exceptions import CheckpointError, RunStoreError

__all__ = [
    "RunArtifacts",
    "RUNS_DIR",
    "run_dir",
    "is_done",
    "write_run",
    "read_run_config",
    "read_metrics",
    "read_history",
    "read_predictions",
    "read_gates",
    "read_preprocessing",
    "load_state",
    "finished_runs",
    "clean_partial",
    "retire_runs",
    "restore_runs",
    "write_json_atomic",
    "SUPERSEDED_DIR",
]

RUNS_DIR = "runs"
SUPERSEDED_DIR = "superseded"


@dataclass
class RunArtifacts:
    """Everything a run folder holds, in memory.

    Attributes:
        run: The resolved run config.
        metrics: Test metrics and costs (``n_params``, ``train_time_s``, ...).
        history: One dict per epoch (:class:`~learnact.training.EpochRecord`).
        predictions: Test rows: ``row``, ``y_true``, ``prob`` (or ``prob_<k>``)
            and, for input-dependent gates, ``gate<layer>_<candidate>``.
        gates: Per hidden layer: ``gate`` kind, ``candidates``, ``temperature``
            and static ``weights`` (``(c,)`` or ``(d, c)``; ``None`` for input gates).
        state: Model weights (``MLP.state_dict()``).
        preprocessing: Scaler statistics and split indices.
    """

    run: RunConfig
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    predictions: pd.DataFrame
    gates: list[dict[str, Any]]
    state: dict[str, torch.Tensor]
    preprocessing: dict[str, Any] = field(default_factory=dict)


DONE = "DONE"


def run_dir(study_dir: Path, run: RunConfig | str) -> Path:
    """Folder of a run inside a study folder."""
    rid = run if isinstance(run, str) else run.run_id
    return Path(study_dir) / RUNS_DIR / rid


def is_done(study_dir: Path, run: RunConfig | str) -> bool:
    """True when the run's folder exists with its DONE marker."""
    return (run_dir(study_dir, run) / DONE).is_file()


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_run(study_dir: Path, art: RunArtifacts) -> Path:
    """Write all artefacts of a run atomically; returns the final folder."""
    from safetensors.torch import save_file

    final = run_dir(study_dir, art.run)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    cfg = {"run_id": art.run.run_id, **art.run.model_dump(mode="json")}
    (tmp / "config.json").write_text(json.dumps(cfg, indent=1))
    with open(tmp / "history.jsonl", "w") as fh:
        for rec in art.history:
            fh.write(json.dumps(rec, default=_json_default) + "\n")
    (tmp / "metrics.json").write_text(json.dumps(art.metrics, indent=1, default=_json_default))
    art.predictions.to_csv(tmp / "predictions.csv", index=False)
    (tmp / "gates.json").write_text(json.dumps(art.gates, indent=1, default=_json_default))
    (tmp / "preprocessing.json").write_text(json.dumps(art.preprocessing, default=_json_default))
    save_file({k: v.contiguous() for k, v in art.state.items()}, str(tmp / "weights.safetensors"),
              metadata={"run_id": art.run.run_id})
    (tmp / DONE).write_text("")
    if final.exists():  # --force: move the old run aside in one step, never half-delete it in place
        old = final.parent / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunStoreError(f"missing file {str(path)!r}; rerun the study to complete the run") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunStoreError(f"corrupt file {str(path)!r} ({exc}); delete its run folder and rerun") from None


def read_run_config(folder: Path) -> RunConfig:
    """The :class:`RunConfig` saved in a run folder."""
    from pydantic import ValidationError

    raw = _read_json(Path(folder) / "config.json")
    raw.pop("run_id", None)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise RunStoreError(f"corrupt config in {str(folder)!r}: {exc.errors()[0]['msg']}") from None


def read_metrics(folder: Path) -> dict[str, Any]:
    """The run's ``metrics.json``."""
    return _read_json(Path(folder) / "metrics.json")


def read_gates(folder: Path) -> list[dict[str, Any]]:
    """The run's ``gates.json`` (one entry per hidden layer)."""
    return _read_json(Path(folder) / "gates.json")


def read_preprocessing(folder: Path) -> dict[str, Any]:
    """The run's ``preprocessing.json`` (scaler and split indices)."""
    return _read_json(Path(folder) / "preprocessing.json")


def read_history(folder: Path) -> list[dict[str, Any]]:
    """The run's per-epoch records."""
    path = Path(folder) / "history.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise RunStoreError(f"missing file {str(path)!r}; rerun the study to complete the run") from None
    except json.JSONDecodeError as exc:
        raise RunStoreError(f"corrupt file {str(path)!r} ({exc}); delete its run folder and rerun") from None


def read_predictions(folder: Path) -> pd.DataFrame:
    """The run's test-set predictions (and per-sample gate weights)."""
    path = Path(folder) / "predictions.csv"
    if not path.is_file():
        raise RunStoreError(f"missing file {str(path)!r}; rerun the study to complete the run")
    return pd.read_csv(path)


def load_state(folder: Path) -> dict[str, Any]:
    """The saved weights (safetensors, never pickle)."""
    from safetensors.torch import load_file

    path = Path(folder) / "weights.safetensors"
    if not path.is_file():
        raise CheckpointError(f"missing weights {str(path)!r}; rerun the study to complete the run")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"corrupt checkpoint {str(path)!r} ({exc}); delete its run folder and rerun") from None


def finished_runs(study_dir: Path) -> list[Path]:
    """Run folders with a DONE marker, sorted by name."""
    root = Path(study_dir) / RUNS_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / DONE).is_file())


def clean_partial(study_dir: Path) -> int:
    """Remove half-written run folders (temporary, being replaced, or without DONE); returns how many.

    Only safe while holding the study folder's lock (another process may be writing).
    """
    root = Path(study_dir) / RUNS_DIR
    if not root.is_dir():
        return 0
    n = 0
    for p in root.iterdir():
        if p.name.startswith(".") and p.is_file():
            p.unlink(missing_ok=True)
            n += 1
        elif p.is_dir() and (p.name.startswith(".") or not (p / DONE).is_file()):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def retire_runs(study_dir: Path, keep: set[str]) -> list[str]:
    """Move finished runs whose id is not in ``keep`` to ``superseded/``; returns their ids.

    A study folder's tables then hold exactly the current study's runs, and
    nothing trained is deleted.
    """
    moved = []
    for folder in finished_runs(study_dir):
        if folder.name not in keep:
            target = Path(study_dir) / SUPERSEDED_DIR / folder.name
            target.parent.mkdir(exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            os.replace(folder, target)
            moved.append(folder.name)
    return moved


def restore_runs(study_dir: Path, wanted: set[str]) -> list[str]:
    """Move finished runs in ``superseded/`` whose id is in ``wanted`` back to ``runs/``; returns their ids."""
    root = Path(study_dir) / SUPERSEDED_DIR
    if not root.is_dir():
        return []
    restored = []
    for folder in sorted(root.iterdir()):
        target = Path(study_dir) / RUNS_DIR / folder.name
        if folder.name in wanted and (folder / DONE).is_file() and not target.exists():
            target.parent.mkdir(exist_ok=True)
            os.replace(folder, target)
            restored.append(folder.name)
    return restored
