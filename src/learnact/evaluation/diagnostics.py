"""What the gates learned: per-layer gate diagnostics from a run folder.

For each gated hidden layer the mixture weights are read from the run's
test-set records: the static weights from ``gates.json`` (one row for a
per-layer gate, one row per unit for a per-neuron gate) or the per-sample
weights of an input-dependent gate from ``predictions.csv``
(``gate<layer>_<candidate>`` columns, one row per test sample). Entropy uses
:func:`learnact.model.activations.gate_entropy`, the same function the
training objective uses.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import store
from ..exceptions import RunStoreError

__all__ = [
    "DEFAULT_COLLAPSE_THRESHOLD",
    "check_collapse_threshold",
    "DIAGNOSTIC_COLUMNS",
    "effective_candidates",
    "entropy_nats",
    "gate_statistics",
    "gate_diagnostics",
    "diagnostics_table",
    "layer_kind",
]

DEFAULT_COLLAPSE_THRESHOLD = 0.9
"""A layer is collapsed when its maximum gate weight exceeds this for every row."""

DIAGNOSTIC_COLUMNS = (
    "run_id", "variant", "seed", "layer", "gate", "candidates", "temperature", "rows", "n_rows",
    "entropy_mean", "entropy_std", "max_weight_mean", "max_weight_std", "max_weight_min",
    "effective_candidates", "collapsed", "collapse_threshold", "dominant",
)
"""Leading columns of :func:`diagnostics_table`; per-candidate columns
``weight_mean_<c>``, ``weight_std_<c>`` and ``argmax_<c>`` follow."""


def layer_kind(record: dict[str, Any]) -> str:
    """``"fixed"``, ``"gated"`` or ``"family"``: what a ``gates.json`` layer record describes.

    Records name their ``kind``; older ones (without it) are gated unless
    their ``gate`` is ``"fixed"``.
    """
    kind = record.get("kind")
    if kind in ("fixed", "gated", "family"):
        return str(kind)
    return "fixed" if record.get("gate", "fixed") == "fixed" else "gated"


def _check_weights(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] < 1 or w.shape[0] < 1:
        raise ValueError(f"gate weights must have shape (c,) or (n, c) with n, c >= 1, got shape {np.shape(weights)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.allclose(w.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("gate weights must be finite, non-negative and sum to one per row; "
                         f"got row sums in [{w.sum(axis=1).min():.6g}, {w.sum(axis=1).max():.6g}]")
    return w


def entropy_nats(weights: np.ndarray) -> np.ndarray:
    """Entropy ``-sum_k g_k log g_k`` in nats of each row of mixture weights.

    The formula of :func:`learnact.model.activations.gate_entropy` (``xlogy``,
    so ``0 log 0 = 0``) on numpy arrays: reading a study's results needs no
    torch, and no scipy either (importing ``scipy.special`` took a quarter of a
    second of ``learnact run`` before its leaderboard). ``tests/evaluation``
    pins it to the torch definition and to scipy's ``xlogy``.

    Shape:
        - weights: ``(c,)`` or ``(n, c)``
        - output: ``(1,)`` or ``(n,)``
    """
    w = _check_weights(weights)
    positive = w > 0
    terms = np.zeros_like(w)
    np.multiply(w, np.log(w, where=positive, out=np.zeros_like(w)), where=positive, out=terms)
    return -terms.sum(axis=-1)


def effective_candidates(weights: np.ndarray) -> float:
    """Effective number of candidates ``exp(H)``, with ``H`` the mean row entropy.

    1 for a one-hot gate, ``c`` for a uniform one; for per-sample weights it
    is the geometric mean of the per-sample perplexities.

    Shape:
        - weights: ``(c,)`` or ``(n, c)``
    """
    return float(np.exp(entropy_nats(weights).mean()))


def check_collapse_threshold(collapse_threshold: object) -> None:
    """Raise ``ValueError`` unless ``collapse_threshold`` is a number in (0, 1) (NaN is not)."""
    if isinstance(collapse_threshold, bool) or not isinstance(collapse_threshold, (int, float)) \
            or not 0 < collapse_threshold < 1:
        raise ValueError(f"collapse_threshold must be in (0, 1), got collapse_threshold={collapse_threshold!r}")


def gate_statistics(
    weights: np.ndarray, candidates: list[str] | tuple[str, ...],
    collapse_threshold: float = DEFAULT_COLLAPSE_THRESHOLD,
) -> dict[str, Any]:
    """Diagnostics of one layer's mixture weights over rows (samples or units).

    Args:
        weights: Mixture weights, one row per test sample (input gates), per
            unit (neuron gates), or a single vector (layer gates).
        candidates: The ``c`` candidate names, in column order.
        collapse_threshold: ``collapsed`` is true when the maximum weight
            exceeds this for every row.

    Returns:
        ``n_rows``; ``entropy_mean`` and ``entropy_std`` (nats; std over rows,
        ``ddof=0``); ``max_weight_mean``, ``max_weight_std``, ``max_weight_min``;
        ``effective_candidates`` (``exp`` of the mean entropy);
        ``weight_mean`` and ``weight_std`` (candidate -> value);
        ``argmax_share`` (candidate -> fraction of rows where it has the
        largest weight; ties go to the first); ``dominant`` (the candidate
        with the largest arg-max share); ``collapsed``; ``collapse_threshold``.

    Shape:
        - weights: ``(c,)`` or ``(n, c)``
    """
    check_collapse_threshold(collapse_threshold)
    w = _check_weights(weights)
    names = list(candidates)
    if len(names) != w.shape[1]:
        raise ValueError(f"got {len(names)} candidate names {names} for weights with {w.shape[1]} columns")
    h = entropy_nats(w)
    top = w.max(axis=1)
    arg = w.argmax(axis=1)
    share = np.bincount(arg, minlength=len(names)) / len(arg)
    return {
        "n_rows": int(w.shape[0]),
        "entropy_mean": float(h.mean()),
        "entropy_std": float(h.std()),
        "max_weight_mean": float(top.mean()),
        "max_weight_std": float(top.std()),
        "max_weight_min": float(top.min()),
        "effective_candidates": float(np.exp(h.mean())),
        "weight_mean": {n: float(v) for n, v in zip(names, w.mean(axis=0), strict=True)},
        "weight_std": {n: float(v) for n, v in zip(names, w.std(axis=0), strict=True)},
        "argmax_share": {n: float(v) for n, v in zip(names, share, strict=True)},
        "dominant": names[int(share.argmax())],
        "collapsed": bool(np.all(top > collapse_threshold)),
        "collapse_threshold": float(collapse_threshold),
    }


def _layer_weights(info: dict[str, Any], predictions: pd.DataFrame | None, folder: Path) -> tuple[np.ndarray, str]:
    layer = info["layer"]
    if info["gate"] == "input":
        cols = [f"gate{layer}_{c}" for c in info["candidates"]]
        assert predictions is not None
        missing = [c for c in cols if c not in predictions.columns]
        if missing:
            raise RunStoreError(f"predictions.csv in {str(folder)!r} lacks gate columns {missing}; "
                                "rerun the study to rewrite the run")
        return predictions[cols].to_numpy(np.float64), "samples"
    if info.get("weights") is None:
        raise RunStoreError(f"gates.json in {str(folder)!r} has no weights for static layer {layer}; "
                            "rerun the study to rewrite the run")
    w = np.asarray(info["weights"], dtype=np.float64)
    return w, ("units" if w.ndim == 2 else "layer")


def gate_diagnostics(
    run_folder: Path, collapse_threshold: float = DEFAULT_COLLAPSE_THRESHOLD
) -> list[dict[str, Any]]:
    """Gate diagnostics of each gated hidden layer of one run, on its test set.

    Args:
        run_folder: A finished run folder (``runs/<run_id>``).
        collapse_threshold: See :func:`gate_statistics`.

    Returns:
        One dict per gated hidden layer, in layer order (fixed layers and
        learnable families have no gate and are skipped, so their runs give ``[]``): ``layer`` (1-based),
        ``gate`` (``"layer"``, ``"neuron"`` or ``"input"``), ``candidates``,
        ``temperature``, ``rows`` (``"layer"``, ``"units"`` or ``"samples"``:
        what the statistics run over), ``weights`` (the static weights as
        saved, ``None`` for input gates) and every key of :func:`gate_statistics`.

    Raises:
        RunStoreError: Missing or malformed ``gates.json`` / ``predictions.csv``.
    """
    check_collapse_threshold(collapse_threshold)  # the caller's value, before any run folder is blamed for it
    folder = Path(run_folder)
    layers = store.read_gates(folder)
    if not isinstance(layers, list):
        raise RunStoreError(f"gates.json in {str(folder)!r} must hold a list of layers, got {type(layers).__name__}")
    gated = [g for g in layers if isinstance(g, dict) and layer_kind(g) == "gated"]
    predictions = store.read_predictions(folder) if any(g["gate"] == "input" for g in gated) else None
    out = []
    for info in gated:
        try:
            weights, rows = _layer_weights(info, predictions, folder)
            stats_ = gate_statistics(weights, info["candidates"], collapse_threshold)
        except (KeyError, ValueError) as exc:
            raise RunStoreError(f"gates of layer {info.get('layer')} in {str(folder)!r} are unusable ({exc}); "
                                "rerun the study to rewrite the run") from None
        out.append({"layer": int(info["layer"]), "gate": info["gate"], "candidates": list(info["candidates"]),
                    "temperature": float(info.get("temperature", float("nan"))), "rows": rows,
                    "weights": info.get("weights"), **stats_})
    return out


def _flatten(diag: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in diag.items() if k not in ("weights", "weight_mean", "weight_std", "argmax_share")}
    row["candidates"] = "+".join(diag["candidates"])
    for c in diag["candidates"]:
        row[f"weight_mean_{c}"] = diag["weight_mean"][c]
        row[f"weight_std_{c}"] = diag["weight_std"][c]
        row[f"argmax_{c}"] = diag["argmax_share"][c]
    return row


def diagnostics_table(study_dir: Path, collapse_threshold: float = DEFAULT_COLLAPSE_THRESHOLD, *,
                      run_ids: Collection[str] | None = None) -> pd.DataFrame:
    """Gate diagnostics of every finished run of a study: one row per run and gated layer.

    Diverged runs (:func:`~learnact.evaluation.status.run_status`) are left
    out: their gates may be NaN (the tidy table counts them).

    Args:
        study_dir: The study folder.
        collapse_threshold: See :func:`gate_statistics`.
        run_ids: Only these runs (default: all); the others' folders are not read (one data set of a suite).

    Returns:
        Columns :data:`DIAGNOSTIC_COLUMNS`, then ``weight_mean_<c>``,
        ``weight_std_<c>`` and ``argmax_<c>`` for every candidate ``c`` seen
        (NaN where a run's layer does not have that candidate). Runs are in
        the order of :func:`learnact.store.study_runs`.
    """
    from .status import FINISHED, run_status

    rows = []
    for folder, cfg in store.study_runs(study_dir):
        if run_ids is not None and folder.name not in run_ids:
            continue
        if run_status(store.read_metrics(folder), str(folder / "metrics.json")) != FINISHED:
            continue
        for diag in gate_diagnostics(folder, collapse_threshold):
            rows.append({"run_id": folder.name, "variant": cfg.variant, "seed": cfg.seed, **_flatten(diag)})
    table = pd.DataFrame(rows, columns=None if rows else list(DIAGNOSTIC_COLUMNS))
    if rows:
        lead = list(DIAGNOSTIC_COLUMNS)
        table = table[lead + [c for c in table.columns if c not in lead]]
    return table
