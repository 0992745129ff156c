"""Case studies: per-sample gate weights of chosen test samples of one input-gated run."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..evaluation import predicted_labels
from ._plot import Row, apply_rows, pick_showcase, stacked_bar
from .study_view import NothingToShow, RunView, StudyView
from .style import candidate_color, new_figure, variant_family

__all__ = ["CASES_PER_GROUP", "select_cases", "case_studies_figure"]

CASES_PER_GROUP = 3
"""Samples shown per group (wrong, correct, least certain)."""


def select_cases(predictions: pd.DataFrame, prob: np.ndarray, per_group: int = CASES_PER_GROUP) -> dict[str, list[int]]:
    """Positions of the test samples to show, by group.

    ``"wrong"``: misclassified, most confident first; ``"correct"``: correctly
    classified, most confident first; ``"least certain"``: the samples whose
    predicted-class probability is closest to chance, not already shown.

    Args:
        predictions: The run's test predictions (``y_true``).
        prob: Probabilities, ``(n,)`` (binary) or ``(n, k)``.
        per_group: Samples per group.

    Returns:
        Group name -> row positions in ``predictions``.
    """
    y = predictions["y_true"].to_numpy().astype(int)
    pred = predicted_labels(prob)
    conf = np.maximum(prob, 1 - prob) if prob.ndim == 1 else prob.max(axis=1)
    order = np.argsort(-conf, kind="stable")
    wrong = [int(i) for i in order if pred[i] != y[i]][:per_group]
    correct = [int(i) for i in order if pred[i] == y[i]][:per_group]
    taken = set(wrong) | set(correct)
    uncertain = [int(i) for i in order[::-1] if int(i) not in taken][:per_group]
    return {"wrong": wrong, "correct": correct, "least certain": uncertain}


def _pick_run(view: StudyView, variant: str) -> RunView:
    for run in view.runs[variant]:
        prob = run.probabilities()
        if np.any(predicted_labels(prob) != run.predictions()["y_true"].to_numpy().astype(int)):
            return run
    return view.runs[variant][0]


def case_studies_figure(view: StudyView) -> tuple[Figure, str]:
    """Figure 10: gate weights of the wrong, correct and least certain test samples of one run.

    The run is the best input-gated variant's first seed with a misclassified
    test sample; a top row gives the mean weights over all its test samples.
    """
    view.require_classification("misclassified and least certain samples")
    inputs = [v for v in view.gated if variant_family(view.config(v)) == "input"]
    if not inputs:
        if not view.gated:
            raise NothingToShow(view.none_finished("gated"))
        raise NothingToShow("no input-dependent gate: static gates give every sample the same weights")
    variant = next((v for v in pick_showcase(view, limit=10) if v in inputs), inputs[0])
    run = _pick_run(view, variant)
    layers = [g for g in run.gates() if g.get("gate") == "input"]
    pred = run.predictions()
    prob = run.probabilities()
    cases = select_cases(pred, prob)
    rows: list[Row] = [("variant", "all test samples (mean)")]
    positions: dict[str, int | None] = {"all test samples (mean)": None}
    for group, idx in cases.items():
        if not idx:
            continue
        rows.append(("heading", f"{group.capitalize()} ({len(idx)})"))
        for i in idx:
            p = float(prob[i]) if prob.ndim == 1 else float(prob[i].max())
            what = "p(class 1)" if prob.ndim == 1 else "p(predicted)"
            shown = f"= {p:.3f}" if 0.001 <= p <= 0.999 else ("< 0.001" if p < 0.001 else "> 0.999")
            label = f"row {int(pred['row'].iloc[i])}: true {int(pred['y_true'].iloc[i])}, {what} {shown}"
            rows.append(("variant", label))
            positions[label] = i
    fig = new_figure(3.0 * len(layers) + 2.6, 0.9 + 0.27 * len(rows))
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    names: list[str] = []
    for j, (ax, info) in enumerate(zip(axes, layers, strict=True)):
        cands = list(info["candidates"])
        names.extend(c for c in cands if c not in names)
        weights = run.sample_gates(int(info["layer"]), cands)
        if weights is None:
            raise NothingToShow(f"predictions of {run.folder.name} lack per-sample gate weights")
        ys = apply_rows(ax, rows, labels=j == 0)
        for label, y in ys.items():
            at = positions[label]
            stacked_bar(ax, y, weights.mean(axis=0) if at is None else weights[at], cands, 0.7)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"Layer {info['layer']}: gate weight")
        ax.grid(axis="x", visible=True)
    fig.legend(handles=[Patch(color=candidate_color(c), label=c) for c in names], loc="outside lower center",
               ncols=len(names), title="Candidate activation")
    detail = (f"Variant {variant}, seed {run.seed}; rows are test samples (row = index in the data set); "
              "wrong and correct samples are the most confident ones, least certain the closest to chance.")
    return fig, detail
