"""Terminal output: the leaderboard table."""

from __future__ import annotations

import pandas as pd

__all__ = ["print_leaderboard"]


def print_leaderboard(table: pd.DataFrame, title: str = "leaderboard") -> None:
    """Print mean ± std per variant (accuracy, F1, ROC-AUC, params, time)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col in ("variant", "n", "accuracy", "F1", "ROC-AUC", "params", "time [s]"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for _, r in table.iterrows():
        pm = lambda k, r=r: f"{r[f'{k}_mean']:.4f} ± {r[f'{k}_std']:.4f}"  # noqa: E731
        t.add_row(str(r["variant"]), str(int(r["n_seeds"])), pm("accuracy"), pm("f1"), pm("roc_auc"),
                  f"{r['params_mean']:.0f}", f"{r['time_mean']:.2f} ± {r['time_std']:.2f}")
    Console(width=max(120, Console().width)).print(t)
