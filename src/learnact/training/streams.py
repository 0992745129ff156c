"""Per-epoch mini-batch orders for many members at once.

Two modes:

- ``"reference"``: each member draws exactly what the reference trainer draws
  for its run (:func:`~learnact.training.seeding.dataloader_permutation` on the
  run's generator, continued after the initialisation draws). Members whose
  generators are in the same state (same seed, same number of initial draws)
  share one stream, so it is drawn once per epoch for all of them.
- ``"fast"``: every member's permutation for an epoch comes from one
  vectorised counter-based hash of ``(seed, epoch, position)``, sorted. It
  depends on the member's seed and nothing else (variants with the same seed
  see the same batches, as in the reference), but it is a different stream,
  so results are not bit-comparable with the reference trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from .seeding import dataloader_permutation

__all__ = ["StreamMode", "PermutationStreams", "hashed_permutations"]

StreamMode = Literal["reference", "fast"]

def _signed(c: int) -> int:
    """A 64-bit constant as the int64 with the same bits."""
    return c - (1 << 64) if c >= 1 << 63 else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)


def _shr(x: Tensor, s: int) -> Tensor:
    """Logical right shift of int64 bit patterns."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mix(x: Tensor) -> Tensor:
    """SplitMix64's finaliser on int64 bit patterns (wrapping arithmetic)."""
    x = (x ^ _shr(x, 30)) * _M1
    x = (x ^ _shr(x, 27)) * _M2
    return x ^ _shr(x, 31)


def hashed_permutations(seeds: Tensor, epoch: int, n: int) -> Tensor:
    """One permutation of ``0..n-1`` per seed, a pure function of ``(seed, epoch)``.

    Args:
        seeds: Integer seeds.
        epoch: 1-based epoch.
        n: Number of samples.

    Shape:
        - seeds: ``(G,)``
        - output: ``(G, n)`` int64
    """
    base = _mix(_mix(seeds.to(torch.int64) * _GOLDEN + epoch) + _GOLDEN)
    keys = _mix(base.unsqueeze(1) + (torch.arange(1, n + 1, dtype=torch.int64) * _GOLDEN))
    return torch.argsort(keys, dim=1)


class PermutationStreams:
    """The members' mini-batch orders, drawn epoch by epoch.

    Args:
        n: Training samples per member (equal across the members).
        mode: ``"reference"`` or ``"fast"`` (see the module docstring).
        generators: Reference mode: each member's generator, already past
            its initialisation draws (members in equal states share a stream).
        seeds: Fast mode: each member's seed.

    Attributes:
        member_stream: ``(K,)`` stream index of each member.
    """

    def __init__(self, n: int, mode: StreamMode, *, generators: Sequence[torch.Generator] | None = None,
                 seeds: Sequence[int] | None = None) -> None:
        if mode not in ("reference", "fast"):
            raise ValueError(f"mode must be 'reference' or 'fast', got mode={mode!r}")
        self.n = n
        self.mode = mode
        keys: list[object]
        if mode == "reference":
            if generators is None:
                raise ValueError("reference mode needs the members' generators, got generators=None")
            keys = [bytes(g.get_state().numpy()) for g in generators]
        else:
            if seeds is None:
                raise ValueError("fast mode needs the members' seeds, got seeds=None")
            keys = [int(s) for s in seeds]
        index: dict[object, int] = {}
        member = []
        self._generators: list[torch.Generator] = []
        self._seeds: list[int] = []
        for i, key in enumerate(keys):
            if key not in index:
                index[key] = len(index)
                if mode == "reference":
                    assert generators is not None
                    self._generators.append(generators[i])
                else:
                    self._seeds.append(int(key))  # type: ignore[call-overload]
            member.append(index[key])
        self.member_stream = torch.tensor(member, dtype=torch.long)
        self._current = torch.empty(len(index), n, dtype=torch.long)
        self._seed_tensor = torch.tensor(self._seeds, dtype=torch.int64)
        self._active = torch.unique(self.member_stream)
        self._active_list = self._active.tolist()

    def select_(self, keep: Tensor) -> None:
        """Keep members ``keep`` (compaction); streams nobody uses stop drawing."""
        self.member_stream = self.member_stream[keep]
        self._active = torch.unique(self.member_stream)
        self._active_list = self._active.tolist()

    def next_epoch(self, epoch: int) -> Tensor:
        """Draw epoch ``epoch``'s permutation for every remaining member.

        Shape:
            - output: ``(K, n)`` int64
        """
        if self.mode == "reference":
            for s in self._active_list:
                self._current[s] = dataloader_permutation(self._generators[s], self.n)
        else:
            self._current[self._active] = hashed_permutations(self._seed_tensor[self._active], epoch, self.n)
        return self._current[self.member_stream]
