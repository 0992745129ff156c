"""A read-only view of a finished study folder, the only input of the report pack.

Everything here comes from disk (``study.json`` when present, and the run
folders through :mod:`learnact.store` and :mod:`learnact.evaluation`); nothing
trains, and only a learnable family's activation module is rebuilt from its
saved weights (:meth:`RunView.family_module`) to draw its shape. A study whose
run folders were copied elsewhere without ``study.json`` still works: names,
seeds and settings are then taken from the run configs.

Every variant is one of three kinds (:func:`variant_kind`): a fixed
activation, a gated mixture of candidates, or a learnable family.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import store
from ..config import RunConfig
from ..evaluation import excluded_note, resolve_reference, run_status, seed_aggregates, tidy_results
from ..evaluation.diagnostics import layer_kind
from ..evaluation.metrics import HEADLINE_METRICS, table_task
from ..evaluation.status import FINISHED
from ..exceptions import RunStoreError

__all__ = ["MULTICLASS_METRICS", "RunView", "StudyView", "load_study_view", "NothingToShow", "variant_kind",
           "VARIANT_KINDS"]

VARIANT_KINDS = ("fixed", "gated", "family")
"""The three kinds of variant, in report order."""


def variant_kind(config: RunConfig) -> str:
    """``"fixed"``, ``"gated"`` or ``"family"`` (a learnable family, named by ``config.activation.kind``)."""
    kind = config.activation.kind
    return kind if kind in ("fixed", "gated") else "family"


class NothingToShow(Exception):
    """Raised by a figure or table builder when the study has nothing for it.

    The message says why (``"no gated variant"``) and ends up in ``index.md``.
    """


@dataclass
class RunView:
    """One run with DONE (finished or diverged): its folder, config and metrics; other files read lazily.

    Attributes:
        folder: The run folder.
        config: The resolved run config.
        metrics: ``metrics.json``.
    """

    folder: Path
    config: RunConfig
    metrics: dict[str, Any]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # a copy sent to a report worker leaves the weights (torch tensors) behind and re-reads them from the
        # folder if it needs them: unpickling a view never imports torch
        state = dict(self.__dict__)
        state["_cache"] = {k: v for k, v in self._cache.items() if k != "state"}
        return state

    @property
    def variant(self) -> str:
        """The variant name."""
        return self.config.variant

    @property
    def seed(self) -> int:
        """The seed."""
        return self.config.seed

    @property
    def status(self) -> str:
        """``"finished"`` or ``"diverged"`` (:func:`learnact.evaluation.run_status`)."""
        return run_status(self.metrics, str(self.folder / "metrics.json"))

    def history(self) -> list[dict[str, Any]]:
        """Per-epoch records (``history.jsonl``), read once."""
        if "history" not in self._cache:
            self._cache["history"] = store.read_history(self.folder)
        return self._cache["history"]

    def predictions(self) -> pd.DataFrame:
        """Test predictions (``predictions.csv``), read once."""
        if "predictions" not in self._cache:
            self._cache["predictions"] = store.read_predictions(self.folder)
        return self._cache["predictions"]

    def gates(self) -> list[dict[str, Any]]:
        """Per-layer gate records (``gates.json``), read once."""
        if "gates" not in self._cache:
            self._cache["gates"] = store.read_gates(self.folder)
        return self._cache["gates"]

    def probabilities(self) -> np.ndarray:
        """Predicted probabilities: ``(n,)`` (binary) or ``(n, k)``."""
        pred = self.predictions()
        if "prob" in pred.columns:
            return pred["prob"].to_numpy(dtype=np.float64)
        cols = sorted((c for c in pred.columns if c.startswith("prob_")), key=lambda c: int(c[5:]))
        if not cols:
            raise RunStoreError(f"predictions of {str(self.folder)!r} have no prob column")
        return pred[cols].to_numpy(dtype=np.float64)

    def state(self) -> dict[str, Any]:
        """The saved weights (``weights.safetensors``, verified), read once."""
        if "state" not in self._cache:
            self._cache["state"] = store.load_state(self.folder)
        return self._cache["state"]

    def family_module(self, layer: int) -> Any:
        """The learnable-family activation of hidden ``layer`` (1-based) with its saved, learned parameters.

        Built from the run's config (family, hyper-parameters, the layer's width)
        and loaded from ``weights.safetensors``; evaluate it with
        :meth:`~learnact.model.ParametricActivation.curves`.

        Raises:
            ValueError: The run's activation is not a learnable family.
            CheckpointError: Missing or edited weights.
        """
        from ..model import build_activation

        act = self.config.activation
        if variant_kind(self.config) != "family":
            raise ValueError(f"run {self.folder.name!r} has a {act.kind} activation, not a learnable family")
        width = self.config.backbone.hidden[layer - 1]
        module = build_activation(act, width, width)
        prefix = f"blocks.{layer - 1}.activation."
        module.load_state_dict({k[len(prefix):]: v for k, v in self.state().items() if k.startswith(prefix)})
        return module.eval()

    def sample_gates(self, layer: int, candidates: list[str]) -> np.ndarray | None:
        """Per-sample gate weights of an input-dependent layer, ``(n, c)``; ``None`` if absent."""
        pred = self.predictions()
        cols = [f"gate{layer}_{name}" for name in candidates]
        if not all(c in pred.columns for c in cols):
            return None
        return pred[cols].to_numpy(dtype=np.float64)


@dataclass
class StudyView:
    """A finished study: its settings and its runs grouped by variant.

    Figures and statistics see finished runs only; diverged runs
    (:mod:`learnact.evaluation.status`) are kept apart in :attr:`diverged`,
    counted in the tables and named in every caption (:meth:`excluded_note`).

    Attributes:
        folder: The study folder.
        name: Study name (``study.json``) or the folder's name.
        seeds: Seeds of the study, in its order.
        reference: The study's reference variant, or ``None``.
        variants: Variants with at least one finished run: fixed baselines, gated
            mixtures, then learnable families, each in study order.
        runs: Finished runs per variant of :attr:`variants`, in seed order.
        settings: Resolved ``study.json`` (``{}`` when absent).
        diverged: Diverged runs per variant (only variants that have one), in seed order.
        all_variants: Every variant with a run, finished or diverged, in the
            order of :attr:`variants` (the tables list them all).
        dataset: The suite data set this view is limited to, or ``None``.
    """

    folder: Path
    name: str
    seeds: list[int]
    reference: str | None
    variants: list[str]
    runs: dict[str, list[RunView]]
    settings: dict[str, Any]
    diverged: dict[str, list[RunView]] = field(default_factory=dict)
    all_variants: list[str] = field(default_factory=list)
    dataset: str | None = None

    def config(self, variant: str) -> RunConfig:
        """The run config of a variant's first run (activation and training settings)."""
        runs = self.runs.get(variant) or self.diverged[variant]
        return runs[0].config

    def n_diverged(self, variant: str) -> int:
        """Diverged runs of ``variant``."""
        return len(self.diverged.get(variant, []))

    def excluded_note(self) -> str:
        """``"k diverged runs excluded from the statistics (...)."``, or ``""`` when none diverged."""
        return excluded_note({v: self.n_diverged(v) for v in self.all_variants})

    def kind(self, variant: str) -> str:
        """``"fixed"``, ``"gated"`` or ``"family"`` (:func:`variant_kind`)."""
        return variant_kind(self.config(variant))

    def is_fixed(self, variant: str) -> bool:
        """True for fixed-activation baselines."""
        return self.kind(variant) == "fixed"

    @cached_property
    def gated(self) -> list[str]:
        """Gated mixtures (variants with a gate), in study order."""
        return [v for v in self.variants if self.kind(v) == "gated"]

    @cached_property
    def families(self) -> list[str]:
        """Learnable-family variants (``prelu``, ``spline``, ...), in study order."""
        return [v for v in self.variants if self.kind(v) == "family"]

    @cached_property
    def learnable(self) -> list[str]:
        """Every variant that is not fixed (gated mixtures and learnable families), in study order."""
        return [v for v in self.variants if not self.is_fixed(v)]

    @cached_property
    def fixed(self) -> list[str]:
        """Fixed-activation variants, in study order."""
        return [v for v in self.variants if self.is_fixed(v)]

    def none_finished(self, *kinds: str) -> str:
        """Why the study has no finished variant of ``kinds`` (``"gated"``, ``"family"``), for a figure or
        table it cannot draw: ``"every run of the gated variant g diverged"`` where such variants exist but
        every run of theirs diverged, else ``"the study has no gated variant and no learnable family"``."""
        dead = {k: [v for v in self.all_variants if v not in self.runs and self.kind(v) == k] for k in kinds}
        if not any(dead.values()):
            return "the study has no " + " and no ".join(_KIND_NAMES[k][0] for k in kinds)
        named = [f"the {_KIND_NAMES[k][len(vs) > 1]} {', '.join(vs)}" for k, vs in dead.items() if vs]
        return f"every run of {' and '.join(named)} diverged"

    def all_runs(self) -> list[RunView]:
        """Every finished run, variant-major (diverged runs are in :attr:`diverged`)."""
        return [r for v in self.variants for r in self.runs[v]]

    def metric_values(self, variant: str, metric: str) -> np.ndarray:
        """One value per finished seed of ``metric`` (from ``metrics.json``)."""
        return np.array([float(r.metrics.get(metric, np.nan)) for r in self.runs.get(variant, [])],
                        dtype=np.float64)

    def mean_metric(self, variant: str, metric: str) -> float:
        """Mean over seeds, ignoring missing values (NaN if none)."""
        vals = self.metric_values(variant, metric)
        vals = vals[np.isfinite(vals)]
        return float(vals.mean()) if len(vals) else float("nan")

    def gated_layers(self, variant: str) -> list[dict[str, Any]]:
        """The ``gates.json`` records of the variant's gated layers (from its first run)."""
        return [g for g in self.runs[variant][0].gates() if layer_kind(g) == "gated"]

    @cached_property
    def tidy(self) -> pd.DataFrame:
        """The tidy results table (:func:`learnact.evaluation.tidy_results`); a suite's data set: its rows."""
        tidy = tidy_results(self.folder)
        if self.dataset is None:
            return tidy
        keep = {r.folder.name for rs in (*self.runs.values(), *self.diverged.values()) for r in rs}
        sub = tidy[tidy["run_id"].isin(keep)]
        sub.attrs = dict(tidy.attrs)
        return sub

    @cached_property
    def task(self) -> str:
        """``"classification"`` or ``"regression"`` (:func:`learnact.evaluation.metrics.table_task`)."""
        return table_task(self.tidy)

    @cached_property
    def multiclass(self) -> bool:
        """Whether a classification study has more than 2 classes: its predictions hold one probability column
        per class (``prob_<k>``; binary: ``prob``). Read from the header of one run's ``predictions.csv``."""
        if self.task != "classification":
            return False
        runs = [r for rs in (*self.runs.values(), *self.diverged.values()) for r in rs]
        try:
            with open(runs[0].folder / "predictions.csv", encoding="utf-8") as f:
                header = f.readline()
        except (IndexError, OSError, UnicodeDecodeError):
            return False
        return "prob_" in header

    @cached_property
    def headline(self) -> tuple[str, ...]:
        """The task's headline metrics, first the one variants are sorted by."""
        return HEADLINE_METRICS[self.task]

    def require_classification(self, what: str) -> None:
        """Raise :class:`NothingToShow` for a regression study (``what`` needs class probabilities)."""
        if self.task == "regression":
            raise NothingToShow(f"a regression study has no class probabilities for {what}")

    @cached_property
    def baseline(self) -> str | None:
        """The variant others are compared with: the study's reference, else the best fixed baseline.

        Resolved by :func:`learnact.evaluation.resolve_reference`, so figures and
        the paired-comparison table agree; ``None`` when that variant has no
        finished run (every run of it diverged: nothing to draw).
        """
        try:
            ref = resolve_reference(self.tidy)
        except ValueError:
            return None
        return ref if ref in self.runs else None

    @cached_property
    def aggregates(self) -> pd.DataFrame:
        """Seed aggregates per variant and quantity (:func:`learnact.evaluation.seed_aggregates`)."""
        return seed_aggregates(self.tidy)

    @cached_property
    def _aggregate_rows(self) -> dict[tuple[str, str], int]:
        # (variant, quantity) -> position of its first aggregate row: a lookup instead of a boolean mask
        # over the whole table per call (hundreds of calls per report, ~3 ms each)
        agg = self.aggregates
        index: dict[tuple[str, str], int] = {}
        for i, key in enumerate(zip(agg["variant"].astype(str), agg["metric"].astype(str), strict=True)):
            index.setdefault(key, i)
        return index

    def aggregate(self, variant: str, quantity: str) -> pd.Series | None:
        """The aggregate row of one variant and quantity, or ``None`` when absent."""
        i = self._aggregate_rows.get((variant, quantity))
        return None if i is None else self.aggregates.iloc[i]

    @cached_property
    def _quantity_values(self) -> dict[tuple[str, str], dict[int, float]]:
        # (variant, quantity) -> {seed: value}, read once from the tidy table (the last row of a seed wins)
        tidy = self.tidy
        out: dict[tuple[str, str], dict[int, float]] = {}
        for variant, metric, seed, value in zip(tidy["variant"].astype(str), tidy["metric"].astype(str),
                                                tidy["seed"].astype(int), tidy["value"].astype(float),
                                                strict=True):
            out.setdefault((variant, metric), {})[seed] = value
        return out

    def run_quantity(self, variant: str, quantity: str) -> np.ndarray:
        """Per finished seed, a tidy-table quantity (metric, cost or gate statistic), seed order."""
        by_seed = self._quantity_values.get((variant, quantity), {})
        return np.array([by_seed.get(r.seed, np.nan) for r in self.runs.get(variant, [])], dtype=np.float64)

    @cached_property
    def dataset_label(self) -> str:
        """Readable data set name (``"Breast Cancer"`` or a CSV file's name)."""
        ds = self.config(self.all_variants[0]).data.dataset
        return Path(ds).name if ("/" in ds or ds.endswith(".csv")) else ds.replace("_", " ").title()


MULTICLASS_METRICS = ("With more than 2 classes, F1 is the macro average of each class's F1 (every class weighs "
                      "the same) and ROC-AUC the macro average of the one-vs-rest AUCs of the classes.")
"""How a multi-class study's report says F1 and ROC-AUC are averaged (protocol and leaderboard caption)."""

_KIND_NAMES = {"gated": ("gated variant", "gated variants"), "family": ("learnable family", "learnable families")}
"""How :meth:`StudyView.none_finished` names each kind of variant (one, several)."""


def _study_settings(folder: Path) -> dict[str, Any]:
    path = folder / "study.json"
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunStoreError(f"corrupt file {str(path)!r} ({exc}); rerun the study to rewrite it") from None
    return raw if isinstance(raw, dict) else {}


def load_study_view(study_dir: Path | str, dataset: str | None = None) -> StudyView:
    """Read a study folder's settings and finished runs.

    Args:
        study_dir: A folder made by ``learnact run`` (``runs/<run_id>/...``).
        dataset: In a suite, the label of the one data set to view (its runs
            only, as if it were a study of its own).

    Raises:
        FileNotFoundError: ``study_dir`` does not exist or is not a folder.
        RunStoreError: It holds no finished run, or a run file is corrupt.
        ValueError: ``dataset`` is not one of the suite's data sets (or the study is no suite).
    """
    folder = Path(study_dir)
    if not folder.is_dir():
        raise FileNotFoundError(store.not_a_study_folder(folder))
    done = list(store.study_runs(folder))
    if dataset is not None:
        labels = list(dict.fromkeys(cfg.suite_dataset for _, cfg in done if cfg.suite_dataset is not None))
        if done and dataset not in labels:  # had read as "no finished runs ... run the study first"
            from .._checks import did_you_mean

            raise ValueError(f"dataset {dataset!r} is not a data set of {str(folder)!r}"
                             f"{did_you_mean(dataset, labels)}; data sets: "
                             f"{', '.join(labels) or '(none: not a suite)'}")
        done = [(path, cfg) for path, cfg in done if cfg.suite_dataset == dataset]
    if not done:
        raise RunStoreError(
            f"study folder {str(folder)!r} has no finished runs (expected runs/<run_id>/DONE); "
            "run the study first with `learnact run`")
    settings = _study_settings(folder)
    every: dict[str, list[RunView]] = {}
    for path, cfg in done:
        every.setdefault(cfg.variant, []).append(RunView(path, cfg, store.read_metrics(path)))
    declared = [v.get("name") for v in settings.get("variants", []) if isinstance(v, dict)]
    order = [v for v in declared if v in every] + sorted(v for v in every if v not in declared)
    # fixed baselines, then gated mixtures, then learnable families (each in study order)
    order = sorted(order, key=lambda v: VARIANT_KINDS.index(variant_kind(every[v][0].config)))
    seeds_declared = [int(s) for s in settings.get("seeds", [])]
    seen = sorted({r.seed for rs in every.values() for r in rs})
    seeds = [s for s in seeds_declared if s in seen] + [s for s in seen if s not in seeds_declared]
    rank = {s: i for i, s in enumerate(seeds)}
    runs: dict[str, list[RunView]] = {}
    diverged: dict[str, list[RunView]] = {}
    for v in order:
        for r in sorted(every[v], key=lambda r: rank[r.seed]):
            (runs if r.status == FINISHED else diverged).setdefault(v, []).append(r)
    reference = settings.get("reference")
    return StudyView(
        dataset=dataset,
        folder=folder,
        name=str(settings.get("name") or folder.resolve().name) + (f" ({dataset})" if dataset else ""),
        seeds=seeds,
        reference=reference if reference in every else None,
        variants=[v for v in order if v in runs],
        runs=runs,
        settings=settings,
        diverged=diverged,
        all_variants=order,
    )
