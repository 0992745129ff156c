"""Terminal output: the leaderboard table."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["print_leaderboard"]


def _num(value: float, fmt: str) -> str:
    return f"{value:{fmt}}" if math.isfinite(value) else "-"


def print_leaderboard(table: pd.DataFrame, title: str = "leaderboard") -> None:
    """Print mean ± std per variant: accuracy, F1, ROC-AUC, params, and the cost of training it alone.

    The cost columns are the variant's FLOPs per sample (forward + backward)
    and the median latency of one training step on one thread
    (:mod:`learnact.training.cost`), ``-`` for runs saved without them.
    """
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col in ("variant", "n", "accuracy", "F1", "ROC-AUC", "params", "FLOPs/sample", "step [ms]"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for _, r in table.iterrows():
        pm = lambda k: f"{r[f'{k}_mean']:.4f} ± {r[f'{k}_std']:.4f}"  # noqa: E731
        flops = _num(float(r.get("flops_per_sample_mean", math.nan)), ",.0f")
        step = _num(float(r.get("step_latency_ms_mean", math.nan)), ".2f")
        t.add_row(str(r["variant"]), str(int(r["n_seeds"])), pm("accuracy"), pm("f1"), pm("roc_auc"),
                  f"{r['params_mean']:.0f}", flops, step)
    Console(width=max(120, Console().width)).print(t)
