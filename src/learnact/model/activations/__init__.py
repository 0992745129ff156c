"""Activation functions: candidate registry, fixed module, gated mixture."""

from .candidates import Candidate, Derivative, candidate_derivative, get_candidate, list_candidates, register_candidate
from .fixed import FixedActivation
from .gated import GatedActivation, GateKind, gate_entropy, mix_candidates, softmax_gate

__all__ = [
    "Candidate",
    "Derivative",
    "FixedActivation",
    "GateKind",
    "GatedActivation",
    "candidate_derivative",
    "gate_entropy",
    "get_candidate",
    "list_candidates",
    "mix_candidates",
    "register_candidate",
    "softmax_gate",
]
