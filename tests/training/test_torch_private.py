"""The private PyTorch APIs the engine uses (``training/_torch_private.py``) still do what it relies on.

On a PyTorch release that changes one of them, these fail first, naming it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from learnact.training._torch_private import set_module_tensor, softmax_backward


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 4, 3)])
def test_softmax_backward_is_autograds_kernel(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen, requires_grad=True)
    g = torch.randn(*shape, generator=gen)
    y = torch.softmax(x, dim=-1)
    (want,) = torch.autograd.grad(y, x, g)
    assert torch.equal(softmax_backward(g, y.detach(), -1), want)


class _Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def test_set_module_tensor_replaces_what_forward_reads():
    module = nn.Sequential(_Scale())
    x = torch.randn(4, 3)
    weight = torch.randn(5, 1, 3)  # a member axis the parameter does not have
    set_module_tensor(module, "0.weight", weight)
    out = module(x)
    assert out.shape == (5, 4, 3)
    assert torch.equal(out, torch.stack([x * w for w in weight]))
    assert module[0].weight is weight
    with pytest.raises(KeyError, match="no parameter '0.scale'"):
        set_module_tensor(module, "0.scale", weight)
