"""Tiny studies and result tables shared by the experiment tests."""

from __future__ import annotations

import pandas as pd

from learnact.evaluation import per_run, tidy_results
from learnact.evaluation.quantities import MACHINE_QUANTITIES

# Columns that measure this machine, not the result.
MACHINE_COLUMNS = list(MACHINE_QUANTITIES)


def tiny_raw(temperature: float = 1.0, n_seeds: int = 2) -> dict:
    """Two variants x ``n_seeds`` seeds, 3 epochs each on a tiny backbone."""
    return {
        "name": "tiny",
        "seeds": {"count": n_seeds, "base": 0},
        "backbone": {"hidden": [8]},
        "train": {"max_epochs": 3, "patience": 3},
        "variants": [
            {"name": "fixed_tanh", "kind": "fixed", "activation": "tanh"},
            {"name": "gated", "temperature": temperature},
        ],
    }


def result_table(folder) -> pd.DataFrame:
    """The per-run metrics table without machine-dependent columns, in a fixed order."""
    table = per_run(tidy_results(folder))
    return table.drop(columns=[c for c in MACHINE_COLUMNS if c in table]).sort_values("run_id").reset_index(
        drop=True)
