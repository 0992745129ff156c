"""Random streams of a run, drawn from one explicit generator.

The reference stream reproduces the draws of the common PyTorch recipe
``torch.manual_seed(seed); model = ...; DataLoader(..., shuffle=True)``:
the model's initial values first, then per epoch the DataLoader's base seed
and the sampler's seed (two int64 draws), the permutation coming from a fresh
generator seeded with the second. Library code never touches global state.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["run_generator", "dataloader_permutation"]


def run_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (same stream as ``torch.manual_seed(seed)``)."""
    return torch.Generator().manual_seed(int(seed))


def _int64(generator: torch.Generator) -> int:
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


def dataloader_permutation(generator: torch.Generator, n: int) -> Tensor:
    """The order in which a shuffling ``DataLoader`` visits ``n`` samples in one epoch.

    Shape:
        - output: ``(n,)`` int64 permutation of ``0..n-1``
    """
    _int64(generator)  # the loader iterator's base seed (unused without workers)
    sampler_seed = _int64(generator)
    return torch.randperm(n, generator=torch.Generator().manual_seed(sampler_seed))
