"""Where tensors live: the one resolver of ``device="cpu" | "cuda" | "auto"``.

Every entry point that takes a ``device`` (the reference trainer, the
estimator, ``learnact run --device``) resolves it here, so a bad value is
refused with the same message everywhere.
"""

from __future__ import annotations

import torch

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """The torch device for ``device``.

    Args:
        device: ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), ``"auto"`` (CUDA when
            ``torch.cuda.is_available()``, else the CPU) or a ``torch.device``.

    Raises:
        ValueError: An unknown value, or CUDA asked for on a machine without
            it; the message names the value and the fix.
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise TypeError(f"device must be a string ({' | '.join(DEVICES)}) or a torch.device, "
                        f"got {type(device).__name__}: {device!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    kind = name.split(":", 1)[0]
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but no CUDA device is available "
                             f"(torch.cuda.is_available() is False); use device 'cpu' or 'auto'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for, but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s); use 'cuda' or 'cuda:0'")
    return resolved
