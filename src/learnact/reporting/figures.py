"""The report's figures: what each shows, how it is built, and how it is captioned.

This module names each figure's builder without importing it: the builders
(:mod:`.drawing`) and matplotlib load where a figure is drawn, in the
report's worker processes (whose fork server imported them ahead of time),
or here when a report draws in this process. The process that trained a
study thus hands its figures to the workers without loading matplotlib
(about 0.6 s on 2 cores, between the leaderboard and the first figure).
"""

from __future__ import annotations

import functools
import pickle
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .shapes import shape_panels
from .study_view import NothingToShow, StudyView

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FigureSpec", "FIGURES", "FigureResult", "build_figures", "figures_for"]

Builder = Callable[[StudyView], "Figure | tuple[Figure, str]"]


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report.

    Attributes:
        name: File stem in ``report/figures/``.
        title: Short title (index and LaTeX section).
        caption: What the figure shows. Text between ``$`` signs is LaTeX math (kept in
            ``report.tex``, and rendered by GitHub in ``index.md``); the rest is plain text.
        build: ``view -> Figure`` or ``(Figure, detail sentence)``; raises
            :class:`NothingToShow` when the study has nothing for it.
        task: ``"classification"`` or ``"regression"`` for a figure only that
            task's studies have (not listed as skipped for the other); ``None``: every study.
        prepare: The part of ``build`` that needs PyTorch, as ``view -> result`` keeping its result on the view
            for ``build`` (the return value is not used), or ``None``. :func:`build_figures` calls it in the
            calling process when that has imported torch already, so the worker drawing the figure need not
            (about 2 s).
    """

    name: str
    title: str
    caption: str
    build: Builder
    task: str | None = None
    prepare: Callable[[StudyView], object] | None = None


@dataclass(frozen=True)
class FigureResult:
    """A built figure (``paths`` set) or a skipped one (``skipped`` says why).

    Attributes:
        spec: The figure's spec.
        detail: Study-specific sentence for the caption (plain text).
        paths: The PNG and PDF written.
        skipped: Why the figure was not drawn, or ``None``.
        missing_glyphs: Characters of its text the figures' font has no glyph for (drawn as boxes).
    """

    spec: FigureSpec
    detail: str = ""
    paths: tuple[Path, ...] = ()
    skipped: str | None = None
    missing_glyphs: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Drawn:
    """The figure builder ``name`` of :mod:`.drawing`, imported when first called (picklable by its name)."""

    name: str

    def __call__(self, view: StudyView) -> Figure | tuple[Figure, str]:
        from . import drawing

        builder: Builder = getattr(drawing, self.name)
        return builder(view)


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("leaderboard", "Leaderboard",
               "Test metrics per variant (classification: accuracy, F1 and ROC-AUC; regression: RMSE, MAE and "
               "R²): small dots are seeds, large markers the mean over seeds with its 95% t interval; fixed "
               "baselines, gated mixtures and learnable families are set apart, each group sorted by mean ROC-AUC "
               "(regression: R²).", _Drawn("leaderboard_figure")),
    FigureSpec("roc", "Mean ROC curves",
               "Mean ROC curve over seeds with a $\\pm 1$ standard deviation band for the reference and the best "
               "variant of each gate kind and the best learnable family, over the full range and zoomed into the "
               "top-left corner.",
               _Drawn("roc_figure"), "classification"),
    FigureSpec("regression_fit", "Predicted against true",
               "Regression: predicted against true test targets (dashed: perfect prediction) and the distribution "
               "of the residuals, for the reference and the best variant of each kind.",
               _Drawn("regression_figure"), "regression"),
    FigureSpec("loss_curves", "Training and validation loss",
               "Training (solid) and validation (dashed) loss per epoch (cross-entropy; regression: mean squared "
               "error on standardised targets), fixed versus learnable "
               "activations; the circle marks the epoch whose weights were kept.", _Drawn("loss_curves_figure")),
    FigureSpec("cost", "Cost",
               "What each variant costs trained alone: trainable parameters; forward plus backward FLOPs per "
               "sample (matrix products as torch's FlopCounterMode counts them, plus one per element of every "
               "elementwise operation), the median latency of one training step on one thread and the activation "
               "memory per sample, measured once per variant at the study's batch size; and epochs until early "
               "stopping: mean $\\pm$ one standard deviation over seeds (dots are seeds).", _Drawn("cost_figure")),
    FigureSpec("gate_selectivity", "Gate entropy and selectivity",
               "Gate entropy (diversity) and maximum gate weight (selectivity) per hidden layer across seeds; "
               "the dashed line is a uniform mixture.", _Drawn("gate_selectivity_figure")),
    FigureSpec("sweep_temperature", "Temperature sweep",
               "Test metrics and gate entropy against the softmax temperature $T$.",
               _Drawn("temperature_sweep_figure")),
    FigureSpec("sweep_entropy_weight", "Entropy-weight sweep",
               "Test metrics and gate entropy against the entropy weight $\\lambda$ (loss = task + "
               "$\\lambda H(g)$; $\\lambda > 0$ pushes each layer toward one candidate).",
               _Drawn("entropy_weight_sweep_figure")),
    FigureSpec("activation_shapes", "Learned activation shapes",
               "The learned activation of each hidden layer, one line per seed: $\\varphi(x) = \\sum_k g_k "
               "\\varphi_k(x)$ for gated mixtures, the family's function with its learned parameters for "
               "learnable families.", _Drawn("activation_shapes_figure"), prepare=shape_panels),
    FigureSpec("gate_weights", "Gate weights per layer",
               "Mixture weights per hidden layer: stacked mean weights for static gates, distributions over "
               "test samples for input-dependent gates.", _Drawn("gate_weights_figure")),
    FigureSpec("gate_evolution", "Gate weights during training",
               "Evolution of the gate weights per candidate over the training epochs.",
               _Drawn("gate_evolution_figure")),
    FigureSpec("confusion", "Confusion matrices",
               "Mean confusion matrix per variant over seeds, each row normalised to the true class "
               "(percent, $\\pm$ standard deviation over seeds).", _Drawn("confusion_figure"), "classification"),
    FigureSpec("case_studies", "Case studies",
               "Per-sample gate weights for misclassified, confidently correct and least certain test samples "
               "of one run, next to the mean over all its test samples.", _Drawn("case_studies_figure"),
               "classification"),
)
"""Every figure of the report, in reading order."""


def figures_for(task: str) -> tuple[FigureSpec, ...]:
    """The figures a study of ``task`` (``"classification"`` or ``"regression"``) has, in reading order."""
    return tuple(s for s in FIGURES if s.task in (None, task))


def build_figures(view: StudyView, folder: Path, specs: tuple[FigureSpec, ...] = FIGURES, *,
                  workers: int | None = None, progress: Callable[[str], None] | None = None,
                  meanwhile: Callable[[], object] | None = None) -> list[FigureResult]:
    """Build and save every figure (PNG and PDF) into ``folder``.

    Figures draw finished runs only (:class:`~.study_view.StudyView`); when
    runs diverged, each figure's detail sentence says how many were left
    out. A figure the study has nothing for is skipped with its reason (all
    of them when every run diverged); any other error propagates.

    The figures render side by side in worker processes
    (:func:`~learnact.reporting.parallel.map_in_processes`), each worker
    drawing its figures from one copy of ``view`` (what one figure reads
    of the runs serves the next); the files are the same as drawn one by one.
    Where this process has imported torch already, each figure's
    :attr:`FigureSpec.prepare` runs here first, so no worker imports it,
    unless the workers are forks of this process (they have torch): then the
    worker that draws the figure prepares it.

    Args:
        view: The study.
        folder: Where the figures go (``report/figures``).
        specs: The figures, in reading order.
        workers: Most worker processes (default: the cores, or ``LEARNACT_REPORT_WORKERS``).
        progress: Called with one line as each figure is saved (``"figure 3/12: cost"``) or skipped
            (``"figure 10/12: sweep_temperature (not drawn: the study has no sweep ...)"``).
        meanwhile: Work for this process while worker processes draw (the report's tables), called once
            whatever is drawn; it may read ``view``, which the workers receive as a copy made before it starts.
    """
    from .parallel import map_in_processes, workers_have_this_process

    # the study's task, even where every run diverged (their rows name its metrics): a classification study never
    # lists the regression figure as not drawn
    wanted = [spec for spec in specs if not (spec.task is not None and spec.task != view.task)]
    if not view.variants:
        if meanwhile is not None:
            meanwhile()
        skipped = [FigureResult(spec, skipped="every run of the study diverged") for spec in wanted]
        for k, result in enumerate(skipped, 1):
            if progress is not None:
                progress(f"figure {k}/{len(skipped)}: {result.spec.name} (not drawn: {result.skipped})")
        return skipped
    note = view.excluded_note()
    picklable = all(_picklable(spec) for spec in wanted)
    n_workers = workers if picklable else 1
    # The caller trained (or evaluates models): torch's work here, not in a worker that would import it; unless
    # the workers are forks of this process, which have torch too: then the worker that draws the figure does it,
    # beside the others, instead of this process before any starts (learnact run: 0.08-0.1 s before the first
    # figure)
    if "torch" in sys.modules and not workers_have_this_process(n_workers, len(wanted)):
        for spec in wanted:
            if spec.prepare is not None:
                try:
                    spec.prepare(view)
                except NothingToShow:
                    pass  # the figure says so when it is built
    # the seed aggregates most figures (and the report's tables) read: computed once, here, and copied to the
    # workers with the view, instead of once in each worker
    view.aggregates  # noqa: B018
    done = [0]

    def tick(i: int, result: FigureResult) -> None:
        done[0] += 1
        if progress is not None:
            skipped = f" (not drawn: {result.skipped})" if result.skipped else ""
            progress(f"figure {done[0]}/{len(wanted)}: {wanted[i].name}{skipped}")

    # longest first
    order = sorted(range(len(wanted)), key=lambda i: -RENDER_SECONDS.get(wanted[i].name, UNLISTED_SECONDS))
    render = functools.partial(_render, view, folder, note)
    queued = [wanted[i] for i in order]
    done_in_order = map_in_processes(render, queued, workers=n_workers,
                                     on_done=lambda k, r: tick(order[k], r), meanwhile=meanwhile)
    results: list[FigureResult | None] = [None] * len(wanted)
    for k, result in zip(order, done_in_order, strict=True):
        results[k] = result
    missing = dict.fromkeys(c for r in results if r is not None for c in r.missing_glyphs)
    if missing:  # once for the report, not once per character, text and figure
        shown = " ".join(f"{c} (U+{ord(c):04X})" for c in list(missing)[:8]) + (" ..." if len(missing) > 8 else "")
        warnings.warn(f"the figures' font has no glyph for {shown}: those characters show as boxes in the figures "
                      "(the tables and index.html show them); install a font that has them and put it first in "
                      "matplotlib's font.sans-serif (matplotlibrc)", stacklevel=2)
    return [r for r in results if r is not None]


RENDER_SECONDS = {"activation_shapes": 0.83, "gate_evolution": 0.78, "confusion": 0.53, "cost": 0.33,
                  "gate_weights": 0.29, "loss_curves": 0.24, "leaderboard": 0.22, "case_studies": 0.20,
                  "gate_selectivity": 0.19, "sweep_temperature": 0.18, "sweep_entropy_weight": 0.16, "roc": 0.15}
"""CPU seconds each figure took to build and save on the paper study (one process, warm): the workers take the
longest first, so no long figure starts last. A scheduling hint only; a figure not listed counts
:data:`UNLISTED_SECONDS`."""

UNLISTED_SECONDS = 0.3
"""What :data:`RENDER_SECONDS` assumes of a figure it does not list (a regression study's fit, a plugin's)."""


def _picklable(spec: FigureSpec) -> bool:
    try:
        pickle.dumps(spec)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from font")
"""matplotlib's warning for a character its font cannot draw (it draws a box), once per character and text."""

_SHOWN: set[tuple[type[Warning], str, str, int]] = set()
"""The other warnings :func:`_render` passed on in this process: each once (its category, text and place), as
Python shows a warning by default; Python's own record of them is reset by each ``catch_warnings``."""


def _render(view: StudyView, folder: Path, note: str, spec: FigureSpec) -> FigureResult:
    """Build and save one figure (module level: it runs in a report worker process).

    matplotlib's missing-glyph warnings (a name in Chinese: one per character
    and text, dozens per figure) are collected into the result, for
    :func:`build_figures` to report once; other warnings pass through.
    """
    from .drawing import figure_style, save_figure

    with warnings.catch_warnings(record=True) as caught, figure_style():
        warnings.simplefilter("always")
        try:
            built = spec.build(view)
        except NothingToShow as why:
            return FigureResult(spec, skipped=str(why))
        fig, detail = built if isinstance(built, tuple) else (built, "")
        paths = save_figure(fig, folder, spec.name)
    missing: dict[str, None] = {}
    for w in caught:
        match = _MISSING_GLYPH.search(str(w.message))
        if match:
            missing[chr(int(match.group(1)))] = None
        elif (key := (w.category, str(w.message), w.filename, w.lineno)) not in _SHOWN:
            _SHOWN.add(key)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return FigureResult(spec, f"{detail} {note}".strip(), tuple(paths), missing_glyphs=tuple(missing))
