"""Models: activations and the MLP backbone."""

from .activations import (
    FixedActivation,
    GatedActivation,
    gate_entropy,
    get_candidate,
    list_candidates,
    mix_candidates,
    register_candidate,
    softmax_gate,
)
from .backbone import MLP, build_activation, count_parameters, init_parameters_

__all__ = [
    "MLP",
    "FixedActivation",
    "GatedActivation",
    "build_activation",
    "count_parameters",
    "gate_entropy",
    "get_candidate",
    "init_parameters_",
    "list_candidates",
    "mix_candidates",
    "register_candidate",
    "softmax_gate",
]
