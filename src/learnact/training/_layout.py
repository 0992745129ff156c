"""The flat, member-major-within-parameter buffer of a stack (private).

All ``K`` members' values of each named parameter form one contiguous
``(K, *shape)`` block; blocks follow each other, each starting on an aligned
address. Parameters, gradients, Adam moments and best snapshots all use this
layout, so the optimiser is a few element-wise operations on whole buffers and
compaction is one gather per block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._products import ALIGN_BYTES

__all__ = ["FlatLayout"]

_ALIGN = ALIGN_BYTES // 4


class FlatLayout:
    """Where each named parameter of each member lives in a flat buffer.

    Args:
        names: Parameter names, in order.
        shapes: Each parameter's per-member shape.
        n_members: ``K``.
    """

    def __init__(self, names: Sequence[str], shapes: Sequence[tuple[int, ...]], n_members: int) -> None:
        self.names = list(names)
        self.shapes = [tuple(s) for s in shapes]
        self.sizes = [int(math.prod(s)) for s in self.shapes]
        self.n_members = n_members
        self.starts: list[int] = []
        lo = 0
        for size in self.sizes:
            self.starts.append(lo)
            lo += -(-n_members * size // _ALIGN) * _ALIGN
        self.numel = lo

    def pack(self, blocks: Sequence[Tensor]) -> Tensor:
        """A buffer holding ``blocks`` (each ``(K, size)``, in :attr:`names` order)."""
        buf = torch.zeros(self.numel)
        for block, lo in zip(blocks, self.starts, strict=True):
            buf[lo:lo + block.numel()] = block.reshape(-1)
        return buf

    def blocks(self, buffer: Tensor) -> list[Tensor]:
        """``(K, size)`` views of each parameter's block of ``buffer``."""
        K = self.n_members
        return [buffer[lo:lo + K * size].view(K, size) for lo, size in zip(self.starts, self.sizes, strict=True)]

    def views(self, buffer: Tensor) -> dict[str, Tensor]:
        """Named ``(K, *shape)`` views of ``buffer``."""
        K = self.n_members
        return {name: b.view(K, *shape) for name, shape, b in zip(self.names, self.shapes, self.blocks(buffer),
                                                                  strict=True)}

    def put_rows_(self, buffer: Tensor, rows: Tensor, source: Tensor) -> None:
        """Copy the members where ``rows`` is True from ``source`` into ``buffer``.

        Shape:
            - rows: ``(K,)`` bool; buffer, source: ``(numel,)``
        """
        if bool(rows.all()):
            buffer.copy_(source)
            return
        index = rows.nonzero().squeeze(1)
        # per parameter block, the chosen members' rows: cheaper than a mask over the whole buffer
        for dst, src in zip(self.blocks(buffer), self.blocks(source), strict=True):
            dst.index_copy_(0, index, src.index_select(0, index))

    def member_state(self, buffer: Tensor, row: int) -> dict[str, Tensor]:
        """Member ``row``'s named parameters in ``buffer``, as fresh tensors."""
        return {name: b[row].view(shape).clone()
                for name, shape, b in zip(self.names, self.shapes, self.blocks(buffer), strict=True)}

    def compact(self, keep: Tensor, names: Sequence[str], buffers: Sequence[Tensor]
                ) -> tuple[FlatLayout, list[Tensor]]:
        """Members ``keep`` and parameters ``names`` only, as a new layout and its buffers."""
        picks = [self.names.index(n) for n in names]
        layout = FlatLayout(names, [self.shapes[i] for i in picks], int(keep.numel()))
        out = []
        for buf in buffers:
            blocks = self.blocks(buf)
            out.append(layout.pack([blocks[i].index_select(0, keep) for i in picks]))
        return layout, out
