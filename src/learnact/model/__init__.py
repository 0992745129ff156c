"""Models: activations and the MLP backbone."""

from .activations import (
    FixedActivation,
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
from .inference import predict_proba

__all__ = [
    "MLP",
    "FixedActivation",
    "GatedActivation",
    "ParametricActivation",
    "build_activation",
    "count_parameters",
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
]
