"""The report's tables: leaderboard, paired comparisons, gate diagnostics.

Every number comes from :mod:`learnact.evaluation` (seed aggregates, paired
comparisons, gate diagnostics); this module only arranges and formats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..evaluation import describe_quantity, diagnostics_table, paired_comparisons
from ..evaluation.diagnostics import DEFAULT_COLLAPSE_THRESHOLD
from ._plot import grouped_rows
from .render import Cell, Table
from .study_view import NothingToShow, StudyView

__all__ = ["LEADERBOARD_COLUMNS", "leaderboard_table", "comparison_table", "diagnostics_summary_table",
           "format_pvalue"]

LEADERBOARD_COLUMNS = ("accuracy", "f1", "roc_auc", "log_loss", "n_params", "flops_per_sample", "step_latency_ms")
REGRESSION_COLUMNS = ("rmse", "mae", "r2", "n_params", "flops_per_sample", "step_latency_ms")
"""The leaderboard table's columns of a regression study."""
"""Quantities of the leaderboard table, in column order.

Cost columns: the variant trained alone (:mod:`learnact.training.cost`).
"""

_SHORT = {"n_params": "Params", "train_time_s": "Time (s)", "log_loss": "Log loss", "flops_per_sample": "FLOPs/sample",
          "step_latency_ms": "Step (ms)"}
_EXACT = {"n_params", "flops_per_sample", "step_latency_ms"}  # measured once per variant: no spread when seeds agree


def format_pvalue(p: float) -> str:
    """``0.043``, ``< 0.001`` or ``n/a``."""
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _fmt(value: float, spec: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, spec)


def _pm(mean: float, std: float, spec: str) -> str:
    """``mean \u00b1 std``, or the mean alone when there is no spread (a single seed)."""
    return f"{_fmt(mean, spec)} \u00b1 {_fmt(std, spec)}" if np.isfinite(std) else _fmt(mean, spec)


def _signed(value: float, decimals: int = 4) -> str:
    """``+0.0012`` / ``-0.0012``; a value that rounds to zero is ``0.0000`` (no sign)."""
    text = f"{value:+.{decimals}f}"
    return text[1:] if float(text) == 0 else text


def _best(values: dict[str, float], higher: bool | None) -> set[str]:
    finite = {k: v for k, v in values.items() if np.isfinite(v)}
    if higher is None or len(finite) < 2:
        return set()
    target = max(finite.values()) if higher else min(finite.values())
    return {k for k, v in finite.items() if np.isclose(v, target, rtol=0, atol=1e-12)}


def _ordered_groups(view: StudyView, variants: Sequence[str] | None = None,
                    sort_by: str | None = None) -> tuple[list[str], dict[int, str], list[int]]:
    key = None
    if sort_by is not None:
        sign = -1.0 if describe_quantity(sort_by).higher_is_better is not False else 1.0
        key = lambda v: sign * np.nan_to_num(view.mean_metric(v, sort_by), nan=-np.inf)  # noqa: E731
    order: list[str] = []
    titles: dict[int, str] = {}
    rules: list[int] = []
    for kind, text in grouped_rows(view, variants, key):
        if kind == "heading":
            titles[len(order)] = text
            if order:
                rules.append(len(order))
        else:
            order.append(text)
    return order, titles, rules


def _with_note(text: str, view: StudyView) -> str:
    """``text`` followed by the study's diverged-runs sentence, if any."""
    note = view.excluded_note()
    return f"{text} {note}".strip() if note else text


def leaderboard_table(view: StudyView, columns: Sequence[str] | None = None) -> Table:
    """Mean +- sample std over finished seeds per variant; the best mean of each column in bold.

    Every variant is listed, one whose every run diverged too (with n/a);
    ``n`` counts finished runs and, when any run diverged, a column counts
    the diverged ones (``n_diverged`` in the data in any case).
    """
    if columns is None:
        columns = REGRESSION_COLUMNS if view.task == "regression" else LEADERBOARD_COLUMNS
    order, titles, rules = _ordered_groups(view, view.all_variants, sort_by=view.headline[0])
    show_diverged = bool(view.diverged)
    records, cells, best = [], {}, {}
    for q in columns:
        info = describe_quantity(q)
        means = {v: float(a["mean"]) if (a := view.aggregate(v, q)) is not None else np.nan for v in order}
        best[q] = _best(means, info.higher_is_better)
    for v in order:
        n = int(max((a["n"] for q in columns if (a := view.aggregate(v, q)) is not None), default=0))
        rec = {"variant": v, "group": view.kind(v), "n_seeds": n,
               "n_diverged": view.n_diverged(v)}
        row = [Cell(v), Cell(str(n))] + ([Cell(str(view.n_diverged(v)))] if show_diverged else [])
        for q in columns:
            agg = view.aggregate(v, q)
            info = describe_quantity(q)
            mean, std = (float(agg["mean"]), float(agg["std"])) if agg is not None else (np.nan, np.nan)
            rec.update({f"{q}_mean": mean, f"{q}_std": std,
                        f"{q}_ci_low": float(agg["ci_low"]) if agg is not None else np.nan,
                        f"{q}_ci_high": float(agg["ci_high"]) if agg is not None else np.nan})
            spec = ",.0f" if q == "n_params" else info.fmt
            text = _pm(mean, std, spec) if q not in _EXACT or std > 0 else _fmt(mean, spec)
            row.append(Cell(text, v in best[q]))
        records.append(rec)
        cells[v] = row
    header = ["Variant", "n"] + (["Diverged"] if show_diverged else []) + \
        [_SHORT.get(q, describe_quantity(q).label) for q in columns]
    seeds = ", ".join(map(str, view.seeds))
    caption = (f"Leaderboard on the {view.dataset_label} test sets: mean \u00b1 sample standard deviation over "
               f"seeds ({seeds}); fixed baselines first, then gated mixtures and learnable families, each sorted by "
               f"{describe_quantity(view.headline[0]).label}. FLOPs per sample (forward + backward) and the latency "
               "of one training step (one thread) "
               "are what the variant costs trained alone at the study's batch size.")
    lower = "RMSE, MAE" if view.task == "regression" else "log loss"
    notes = f"Bold: best mean per column (higher is better except {lower}, parameters, FLOPs and step time)."
    if show_diverged:
        notes = _with_note(f"{notes} n: finished runs; Diverged: runs whose loss, weights or gates stopped being "
                           "finite (their test metrics are NaN).", view)
    align = "lr" + ("r" if show_diverged else "") + "r" * len(columns)
    return Table("leaderboard", caption, header, [cells[v] for v in order], align,
                 pd.DataFrame(records), rules, titles, notes,
                 "Leaderboard")


def comparison_table(view: StudyView, metrics: Sequence[str] | None = None,
                     reference: str | None = None, alpha: float = 0.05) -> Table:
    """Paired comparisons with the reference (:func:`learnact.evaluation.paired_comparisons`).

    Raises:
        NothingToShow: The study has a single variant.
    """
    if len(view.all_variants) < 2:
        raise NothingToShow("the study has a single variant; nothing to compare")
    metrics = tuple(metrics) if metrics is not None else view.headline
    table = paired_comparisons(view.tidy, reference, metrics)
    ref = str(table.attrs["reference"])
    order, _, _ = _ordered_groups(view, [v for v in view.all_variants if v != ref])
    rows: list[list[Cell]] = []
    titles: dict[int, str] = {}
    rules: list[int] = []
    for metric in metrics:
        info = describe_quantity(metric)
        block = table[table["metric"] == metric].set_index("variant")
        if rows:
            rules.append(len(rows))
        titles[len(rows)] = f"{info.label} ({'higher' if info.higher_is_better is not False else 'lower'} is better)"
        for v in order:
            if v not in block.index:
                continue
            r = block.loc[v]
            if not bool(r["comparable"]):
                rows.append([Cell(v), Cell(str(r["status"]))] + [Cell("")] * 5)
                continue
            interval = (f"[{_signed(r['ci_low'])}, {_signed(r['ci_high'])}]"
                        if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"])
                        else "(same on every seed)")  # no spread: the t-test gives no interval, nor a p-value
            diff = f"{_signed(r['mean_diff'])} {interval}"
            record = ("-" if r["higher_is_better"] is None  # no better direction, no wins
                      else f"{r['wins']}/{r['ties']}/{r['losses']}")
            rows.append([Cell(v), Cell(diff), Cell(_fmt(r["effect_size"], "+.2f")),
                         Cell(format_pvalue(r["p_value"])), Cell(format_pvalue(r["p_holm"]), r["p_holm"] < alpha),
                         Cell(format_pvalue(r["wilcoxon_p"])), Cell(record)])
    header = ["Variant", "\u0394 mean [95% CI]", "d", "p (corr. t)", "p (Holm)", "p (Wilcoxon)", "W/T/L"]
    caption = (f"Paired comparisons with the reference {ref} on shared seeds (seeds both finished): mean "
               "difference (variant minus "
               "reference) with its 95% interval, standardised effect d = mean/sd of the differences, "
               "Nadeau-Bengio corrected resampled t-test, Holm adjustment over the variants of each metric, "
               "Wilcoxon signed-rank test, and seeds won/tied/lost.")
    notes = _with_note(f"Bold: Holm-adjusted p < {alpha:g}.", view)
    data = table.drop(columns=["higher_is_better"]).reset_index(drop=True)
    return Table("comparisons", caption, header, rows, "lrrrrrc", data, rules, titles, notes,
                 "Paired comparisons")


def diagnostics_summary_table(view: StudyView) -> Table:
    """Gate diagnostics per gated variant and layer: mean +- std over finished seeds of the per-run statistics.

    Diverged runs have no gate statistics: ``n_diverged`` counts them, and a
    gated variant whose every run diverged gets one row saying so.

    Raises:
        NothingToShow: The study has no gated variant (learnable families have no gate).
    """
    gated = [v for v in view.all_variants if view.kind(v) == "gated"]  # with or without a finished run
    if not gated:
        raise NothingToShow("the study has no gated variant")
    # the gated variants' runs only (a suite's data set: its own), not every run folder of the study
    diag = diagnostics_table(view.folder, run_ids={r.folder.name for v in view.gated for r in view.runs[v]})
    records: list[dict[str, Any]] = []
    rows: list[list[Cell]] = []
    rules: list[int] = []
    stats = [("entropy_mean", ".3f"), ("max_weight_mean", ".3f"), ("effective_candidates", ".2f")]
    for v in gated:
        if v not in view.runs:
            records.append({"variant": v, "layer": np.nan, "gate": view.config(v).activation.gate, "n_seeds": 0,
                            "n_diverged": view.n_diverged(v)})
            rows.append([Cell(v), Cell("\u2013"), Cell(view.config(v).activation.gate),
                         Cell(f"every run diverged ({view.n_diverged(v)})")] + [Cell("")] * 5)
            continue
        for layer, group in diag[diag["variant"] == v].groupby("layer", sort=True):
            cands = str(group["candidates"].iloc[0]).split("+")
            rec = {"variant": v, "layer": int(layer), "gate": group["gate"].iloc[0], "n_seeds": len(group),
                   "n_diverged": view.n_diverged(v)}
            row = [Cell(v), Cell(str(int(layer))), Cell(str(group["gate"].iloc[0]))]
            for stat, spec in stats:
                vals = group[stat].to_numpy(dtype=float)
                mean, std = vals.mean(), vals.std(ddof=1) if len(vals) > 1 else np.nan
                rec[f"{stat}_mean"], rec[f"{stat}_std"] = mean, std
                row.append(Cell(_pm(mean, std, spec)))
            weights = []
            for c in cands:
                rec[f"weight_{c}"] = float(group[f"weight_mean_{c}"].mean())
                weights.append(f"{c} {rec[f'weight_{c}']:.2f}")
            dominant = group["dominant"].value_counts()
            rec["dominant"], rec["dominant_seeds"] = str(dominant.index[0]), int(dominant.iloc[0])
            rec["collapsed_seeds"] = int(group["collapsed"].astype(bool).sum())
            row += [Cell(", ".join(weights)), Cell(f"{dominant.index[0]} ({dominant.iloc[0]}/{len(group)})"),
                    Cell(f"{rec['collapsed_seeds']}/{len(group)}")]
            records.append(rec)
            rows.append(row)
    header = ["Variant", "Layer", "Gate", "Entropy (nats)", "Max weight", "Effective cand.", "Mean weights",
              "Dominant", "Collapsed"]
    threshold = float(diag["collapse_threshold"].iloc[0]) if len(diag) else DEFAULT_COLLAPSE_THRESHOLD
    caption = ("Gate diagnostics on the test sets, mean \u00b1 sample standard deviation over seeds: entropy "
               "of the mixture weights, largest weight and effective number of candidates exp(H) (averaged over "
               "test samples for input gates and over units for per-neuron gates), mean weight per candidate, "
               "the most frequent dominant candidate (seeds), and seeds whose gate collapsed (largest weight "
               f"above {threshold:g} everywhere).")
    notes = _with_note("No column has a better direction, so nothing is bold.", view)
    return Table("gate_diagnostics", caption, header, rows, "lclrrrlll", pd.DataFrame(records), rules, {},
                 notes, "Gate diagnostics")
