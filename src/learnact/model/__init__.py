"""Models: activations, the MLP backbone and drop-in helpers for any model."""

from .activations import (
    FixedActivation,
    FrozenMixture,
    GatedActivation,
    ParametricActivation,
    gate_entropy,
    get_candidate,
    get_family,
    list_candidates,
    list_families,
    mix_candidates,
    register_candidate,
    softmax_gate,
)
from .backbone import MLP, build_activation, count_parameters, init_parameters_
from .dropin import GateRecorder, Replacement, convert, entropy_penalty, freeze, summarize
from .inference import predict_proba

__all__ = [
    "MLP",
    "FixedActivation",
    "FrozenMixture",
    "GateRecorder",
    "GatedActivation",
    "ParametricActivation",
    "Replacement",
    "build_activation",
    "convert",
    "count_parameters",
    "entropy_penalty",
    "freeze",
    "gate_entropy",
    "get_candidate",
    "get_family",
    "init_parameters_",
    "list_candidates",
    "list_families",
    "mix_candidates",
    "predict_proba",
    "register_candidate",
    "softmax_gate",
    "summarize",
]
