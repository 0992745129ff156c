"""The names a study file or a command line can refer to, without loading torch.

Config validation (:mod:`learnact.config`) checks every name against this
registry only, so validating a study file imports neither torch nor
matplotlib. The modules that implement the names register into it:

- candidates: :func:`learnact.model.activations.register_candidate` calls
  :func:`add_candidate` (the built-ins are listed here, :data:`BUILTIN_CANDIDATES`);
- learnable families: :mod:`learnact.family_params` registers the built-in
  families' hyper-parameter classes, and
  :func:`learnact.model.activations.register_family` registers any other;
- data sets, gate kinds, metrics, engines and executors are fixed lists, and
  ``tests/test_names.py`` checks each equals the registry of the module that
  implements it, so the two cannot drift apart.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from ._checks import did_you_mean

if TYPE_CHECKING:
    from .family_params import FamilyParams

__all__ = [
    "BUILTIN_CANDIDATES",
    "BUILTIN_DATASETS",
    "REGRESSION_DATASETS",
    "GATE_KINDS",
    "METRICS",
    "ENGINES",
    "DEFAULT_ENGINE",
    "FAST_ENGINES",
    "EXECUTORS",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "add_candidate",
    "check_candidate",
    "list_candidates",
    "register_family",
    "family_params_model",
    "list_families",
    "list_presets",
]

BUILTIN_CANDIDATES = ("relu", "tanh", "sigmoid", "gelu", "silu", "elu", "softplus", "leaky_relu", "identity", "sin")
"""Candidates defined by :mod:`learnact.model.activations.candidates`."""
BUILTIN_DATASETS = ("breast_cancer", "wine", "iris", "digits", "moons", "circles", "spirals", "xor", "classification",
                    "gaussian_quantiles", "mnist1d", "penguins", "diabetes", "formula_exp_sin", "formula_product",
                    "formula_ripple", "formula_bumps")
REGRESSION_DATASETS = ("diabetes", "formula_exp_sin", "formula_product", "formula_ripple", "formula_bumps")
"""The data sets of :data:`BUILTIN_DATASETS` whose task is regression (the others are classification)."""
"""Data sets loaded by name (:mod:`learnact.data.sources`); anything else is a CSV path."""
GATE_KINDS = ("layer", "neuron", "input")
"""Gate granularities of a gated activation (:data:`learnact.model.activations.GateKind`)."""
METRICS = ("accuracy", "f1", "roc_auc", "log_loss", "brier", "ece", "rmse", "mae", "r2")
"""Metrics every run is scored on (:data:`learnact.evaluation.metrics.METRICS`), in report order."""
ENGINES = ("sequential", "vectorized", "vectorized-fast")
"""Training engines (:data:`learnact.experiment.engines.ENGINES`)."""
DEFAULT_ENGINE = "vectorized"
"""Engine used when none is named (``learnact run --engine``)."""
FAST_ENGINES = ("vectorized-fast",)
"""Engines that draw their own random stream (mini-batch orders from a hash of seed and epoch): their runs are not
bit-comparable with the other engines' runs of the same id, so a study folder holds runs of one kind only (each
fast run says so in its ``metrics.json``: :data:`learnact.experiment.engines.STREAM_KEY`)."""
EXECUTORS = ("local", "processes", "dask")
"""Where groups of runs can train (``learnact run --executor``)."""
DEFAULT_CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a Dask scheduler before giving up (``learnact run --connect-timeout``)."""

_candidates: list[str] = list(BUILTIN_CANDIDATES)
_family_params: dict[str, type[FamilyParams]] = {}


def add_candidate(name: str) -> None:
    """Record a candidate name (called by ``register_candidate``; the built-ins are known already)."""
    if name not in _candidates:
        _candidates.append(name)


def list_candidates() -> list[str]:
    """Names of all candidates, sorted."""
    return sorted(_candidates)


def check_candidate(name: str) -> str:
    """``name`` if it is a candidate: a registered name, or a well-formed import path (``"mypkg.acts:fn"``,
    checked for its form only; it is imported where the candidate is used).

    Raises:
        ValueError: ``name`` is unknown; the message lists the valid names.
    """
    if isinstance(name, str) and name in _candidates:
        return name
    if isinstance(name, str) and ":" in name:  # a user candidate by import path, resolved where it trains
        from .plugins import check_import_path

        return check_import_path(name)
    raise ValueError(f"unknown activation {name!r}{did_you_mean(str(name), _candidates)}; "
                     f"valid: {', '.join(sorted(_candidates))}")


def register_family(name: str, params: type[FamilyParams]) -> None:
    """Record a learnable family and its hyper-parameter class.

    Registering a name again with the same class is allowed (the built-ins are
    recorded by :mod:`learnact.family_params` before their modules register);
    with another class it is an error.
    """
    if name in ("fixed", "gated") or _family_params.get(name, params) is not params:
        raise ValueError(f"activation family {name!r} is already registered")
    _family_params[name] = params


def _unknown_family(name: str) -> ValueError:
    return ValueError(f"unknown activation family {name!r}{did_you_mean(str(name), _family_params)}; "
                      f"valid: {', '.join(sorted(_family_params))}")


def family_params_model(name: str) -> type[FamilyParams]:
    """The hyper-parameter class of a family; unknown names list the valid ones."""
    try:
        return _family_params[name]
    except (KeyError, TypeError):
        raise _unknown_family(name) from None


def list_families() -> list[str]:
    """Names of the learnable families, sorted."""
    return sorted(_family_params)


def list_presets() -> list[str]:
    """Names of the built-in study presets (files in ``learnact/presets``)."""
    return sorted(p.name[:-5] for p in resources.files("learnact.presets").iterdir() if p.name.endswith(".toml"))
