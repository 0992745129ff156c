"""Activation functions: candidate registry, fixed module, gated mixture, learnable families."""

from .candidates import Candidate, Derivative, candidate_derivative, get_candidate, list_candidates, register_candidate
from .families import ParametricActivation, family_params_model, get_family, list_families, register_family
from .fixed import FixedActivation
from .frozen import FrozenMixture
from .gated import GatedActivation, GateKind, gate_entropy, mix_candidates, softmax_gate

__all__ = [
    "Candidate",
    "Derivative",
    "FixedActivation",
    "FrozenMixture",
    "GateKind",
    "GatedActivation",
    "ParametricActivation",
    "candidate_derivative",
    "family_params_model",
    "gate_entropy",
    "get_candidate",
    "get_family",
    "list_candidates",
    "list_families",
    "mix_candidates",
    "register_candidate",
    "register_family",
    "softmax_gate",
]
