"""The private PyTorch APIs the engine uses (``training/_torch_private.py``) still do what it relies on.

On a PyTorch release that changes one of them, these fail first, naming it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from learnact.training._torch_private import set_module_tensor, softmax_backward, vjp


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


def test_vjp_is_autograds_grad():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 6, generator=gen, requires_grad=True)
    w = torch.randn(6, generator=gen, requires_grad=True)
    unused = torch.randn(2, requires_grad=True)
    g = torch.randn(4, 6, generator=gen)

    def out():
        return torch.tanh(x * w) * torch.sigmoid(x)

    want = torch.autograd.grad(out(), [x, w, unused], g, allow_unused=True)
    got = vjp(out(), [x, w, unused], g)
    assert got[2] is None and want[2] is None
    assert all(torch.equal(a, b) for a, b in zip(got[:2], want[:2], strict=True))
    with pytest.raises(ValueError, match=r"grad of shape \(4,\)"):
        vjp(out(), [x], torch.ones(4))


def test_vjp_does_not_import_sympy_as_autograds_grad_does():
    # torch.autograd.grad's checks of explicit output gradients import torch.fx's symbolic shapes (and sympy):
    # about 0.4 s in each process that trains a learnable family in a stack
    code = textwrap.dedent("""
        import sys, torch
        from learnact.training._torch_private import vjp
        x = torch.randn(3, requires_grad=True)
        vjp(torch.tanh(x), [x], torch.ones(3))
        before = "sympy" in sys.modules
        torch.autograd.grad(torch.tanh(x), [x], torch.ones(3))
        print(before, "sympy" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
