"""learnact: learning activation functions.

Gated mixtures of candidate nonlinearities as drop-in ``torch.nn`` modules,
a controlled MLP backbone, multi-seed studies with stability-aware statistics,
and a LaTeX-ready report pack.

Importing ``learnact`` only defines names; nothing is trained, seeded or read.
The model names (``GatedActivation``, ``MLP``, ...) load torch on first use, so
validating a study file or ``learnact --help`` does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .config import ActivationConfig, BackboneConfig, DataConfig, RunConfig, StudyConfig, TrainConfig
from .exceptions import ConfigError, DataError, LearnactError

if TYPE_CHECKING:
    from .model import (
        MLP,
        FixedActivation,
        GatedActivation,
        GateRecorder,
        convert,
        entropy_penalty,
        freeze,
        gate_entropy,
        get_candidate,
        list_candidates,
        register_candidate,
        summarize,
    )

__version__ = "0.1.0"

# The model names load torch on first use, so `learnact --help` and a mistyped option answer at once.
_MODULE_OF = lazy_exports(__name__, {"model": (
    "MLP", "FixedActivation", "GateRecorder", "GatedActivation", "convert", "entropy_penalty", "freeze", "gate_entropy",
    "get_candidate", "list_candidates", "register_candidate", "summarize")}, globals())

__all__ = [
    "MLP",
    "ActivationConfig",
    "BackboneConfig",
    "ConfigError",
    "DataConfig",
    "DataError",
    "FixedActivation",
    "GateRecorder",
    "GatedActivation",
    "LearnactError",
    "RunConfig",
    "StudyConfig",
    "TrainConfig",
    "__version__",
    "convert",
    "entropy_penalty",
    "freeze",
    "gate_entropy",
    "get_candidate",
    "list_candidates",
    "register_candidate",
    "summarize",
]
