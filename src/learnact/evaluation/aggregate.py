"""Per-run tables from a study folder and seed aggregates per variant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from .metrics import METRICS

__all__ = ["runs_table", "leaderboard", "COST_COLUMNS"]

COST_COLUMNS = ("n_params", "train_time_s", "best_epoch", "epochs_run", "peak_memory_mb")


def runs_table(study_dir: Path) -> pd.DataFrame:
    """One row per finished run: ``run_id, variant, seed``, metrics and costs."""
    rows = []
    for folder in store.finished_runs(study_dir):
        cfg = store.read_run_config(folder)
        rows.append({"run_id": folder.name, "variant": cfg.variant, "seed": cfg.seed,
                     **store.read_metrics(folder)})
    return pd.DataFrame(rows)


def leaderboard(runs: pd.DataFrame, sort_by: str = "roc_auc") -> pd.DataFrame:
    """Mean and sample std over seeds per variant, sorted by ``sort_by`` (best first).

    Columns: ``variant, n_seeds, <metric>_mean, <metric>_std, ...,
    time_mean, time_std, params_mean``.
    """
    if runs.empty:
        return pd.DataFrame()
    out = []
    for variant, group in runs.groupby("variant", sort=False):
        row = {"variant": variant, "n_seeds": len(group)}
        for name in [*METRICS, "train_time_s"]:
            vals = group[name].to_numpy(dtype=float)
            key = "time" if name == "train_time_s" else name
            row[f"{key}_mean"] = float(np.mean(vals))
            row[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
        row["params_mean"] = float(group["n_params"].mean())
        out.append(row)
    table = pd.DataFrame(out)
    asc = not METRICS[sort_by].higher_is_better if sort_by in METRICS else False
    return table.sort_values(f"{sort_by}_mean", ascending=asc, kind="stable").reset_index(drop=True)
