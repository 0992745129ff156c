"""A model's weights as plain tensors, apart from the modules' non-tensor extra state.

Learnable activations keep their candidate names (a family: its name and
hyper-parameters) in the state_dict as extra state (``<path>._extra_state``),
checked when a state_dict is loaded; a state without it (a weights file, one
saved before the extra state existed) still loads, unchecked. Weight files
(safetensors) and in-memory copies hold tensors only: :func:`tensor_state`
drops the extra state, so the files keep their bytes.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["tensor_state", "tolerate_missing_extra_state"]

EXTRA_STATE = "_extra_state"


def tensor_state(module: nn.Module) -> dict[str, Tensor]:
    """``module.state_dict()`` without its non-tensor extra state (what a weights file holds)."""
    return {k: v for k, v in module.state_dict().items() if isinstance(v, Tensor)}


def tolerate_missing_extra_state(prefix: str, missing_keys: list[str]) -> None:
    """Forgive a missing ``<prefix>_extra_state`` key (for ``_load_from_state_dict`` overrides)."""
    key = prefix + EXTRA_STATE
    if key in missing_keys:
        missing_keys.remove(key)
