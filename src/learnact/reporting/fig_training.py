"""Training dynamics: loss curves on a matched seed, all seeds faintly behind."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator

from ._plot import pick_showcase, wrap_name
from .study_view import NothingToShow, StudyView
from .style import new_figure, variant_colors

__all__ = ["loss_curves_figure", "matched_seed"]


def matched_seed(view: StudyView, variants: list[str]) -> int:
    """The first study seed that every one of ``variants`` finished.

    Raises:
        NothingToShow: The variants share no seed.
    """
    for seed in view.seeds:
        if all(any(r.seed == seed for r in view.runs[v]) for v in variants):
            return seed
    raise NothingToShow(f"variants {variants} share no seed")


def _curve(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    epochs = np.array([rec["epoch"] for rec in history], dtype=float)
    values = np.array([rec.get(key, np.nan) for rec in history], dtype=float)
    return epochs, values


def loss_curves_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 3: training and validation cross-entropy per epoch, fixed vs learnable.

    One panel per showcased variant (the reference or best fixed baseline, and
    the best variant of each gate family), on a shared log-scaled loss axis. The
    matched seed is drawn boldly, every other seed faintly; a dot marks the
    epoch whose weights were kept (early stopping).
    """
    chosen = pick_showcase(view, limit=3)
    if not any(view.runs[v][0].history() for v in chosen):
        raise NothingToShow("the runs have no training history")
    seed = matched_seed(view, chosen)
    colors = variant_colors(view)
    fig = new_figure(2.9 * len(chosen) + 0.6, 3.3)
    axes = fig.subplots(1, len(chosen), sharey=True, sharex=True, squeeze=False)[0]
    for j, (ax, v) in enumerate(zip(axes, chosen, strict=True)):
        for run in view.runs[v]:
            hist = run.history()
            if not hist:
                continue
            bold = run.seed == seed
            kw = {"lw": 1.6 if bold else 0.8, "alpha": 1.0 if bold else 0.3, "zorder": 3 if bold else 2}
            ep, train = _curve(hist, "train_task")
            _, val = _curve(hist, "val_loss")
            ax.plot(ep, train, color=colors[v], ls="-", **kw)
            ax.plot(ep, val, color="0.15" if bold else colors[v], ls="--", **kw)
            if bold:
                best = int(run.metrics.get("best_epoch", 0))
                if best in ep:
                    ax.plot(best, val[list(ep).index(best)], "o", ms=6, mfc="white", mec="0.1", zorder=4)
        ax.set_yscale("log")
        # minor ticks at 2 and 5 times each power of ten, not at every integer multiple: a log axis over a few
        # decades made two dozen minor ticks per panel, a third of the figure's CPU time
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.set_title(wrap_name(v, 30))
        ax.set_xlabel("Epoch")
        if j == 0:
            ax.set_ylabel("Cross-entropy (nats, log scale)" if view.task != "regression"
                          else "Mean squared error (standardised targets, log scale)")
    handles = [Line2D([], [], color="0.4", ls="-", lw=1.6, label=f"training (seed {seed})"),
               Line2D([], [], color="0.15", ls="--", lw=1.6, label=f"validation (seed {seed})"),
               Line2D([], [], color="0.4", ls="-", lw=0.8, alpha=0.35, label="other seeds"),
               Line2D([], [], ls="none", marker="o", mfc="white", mec="0.1", label="epoch kept (early stopping)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=4)
    detail = (f"Matched seed {seed} in bold, the other seeds faint; training loss is the task part of the "
              "objective (without the entropy term).")
    return fig, detail
