"""learnact: learning activation functions.

Gated mixtures of candidate nonlinearities as drop-in ``torch.nn`` modules,
a controlled MLP backbone, multi-seed studies with stability-aware statistics,
and a LaTeX-ready report pack.

Importing ``learnact`` only defines names; nothing is trained, seeded or read.
"""

from __future__ import annotations

from .config import ActivationConfig, BackboneConfig, DataConfig, RunConfig, StudyConfig, TrainConfig
from .exceptions import ConfigError, DataError, LearnactError
from .model import MLP, FixedActivation, GatedActivation, gate_entropy, get_candidate, list_candidates, \
    register_candidate

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "ActivationConfig",
    "BackboneConfig",
    "ConfigError",
    "DataConfig",
    "DataError",
    "FixedActivation",
    "GatedActivation",
    "LearnactError",
    "RunConfig",
    "StudyConfig",
    "TrainConfig",
    "__version__",
    "gate_entropy",
    "get_candidate",
    "list_candidates",
    "register_candidate",
]
