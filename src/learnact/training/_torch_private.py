"""Every use of a private PyTorch API by the training engine, in one place (private).

PyTorch does not promise these across versions, so each is wrapped here,
named for what the engine needs from it, and exercised by
``tests/training/test_torch_private.py`` against the public behaviour it
replaces (on a PyTorch that changed one, that test fails first, naming it).

- :func:`softmax_backward`: ``torch._softmax_backward_data``, the kernel
  autograd calls for ``softmax``'s backward (the hand-derived gate backward
  must call the very same kernel to stay bit-identical).
- :func:`set_module_tensor`: puts a plain tensor in a module's
  ``_parameters`` slot, so the module's own ``forward`` computes with a
  stacked (member-axis) tensor in place of its parameter. The public
  ``torch.func.functional_call`` does the same with a context manager and
  checks that cost about 0.25 ms a call, more than the computation itself on
  a small stack.
- :func:`vjp`: ``torch.autograd.grad`` with explicit output gradients, run
  straight on autograd's engine. The public function's shape checks import
  ``torch.fx``'s symbolic shapes, and with them sympy, on first use: about
  0.4 s in every process that trains a learnable family in a stack.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["set_module_tensor", "softmax_backward", "vjp"]


def softmax_backward(grad: Tensor, output: Tensor, dim: int) -> Tensor:
    """Gradient of ``softmax(x, dim)`` with respect to ``x``, given ``grad`` and the softmax ``output``.

    The kernel autograd calls (``aten::_softmax_backward_data``).

    Shape:
        - grad, output: ``(*)``; returned: ``(*)``
    """
    return torch._softmax_backward_data(grad, output, dim, output.dtype)


def set_module_tensor(module: nn.Module, name: str, value: Tensor) -> None:
    """Make ``module``'s parameter ``name`` (dotted, e.g. ``"inner.weight"``) read as ``value``.

    ``value`` need not be an ``nn.Parameter`` nor have the parameter's shape;
    the module's ``forward`` sees it wherever it reads the attribute. Meant for
    a private copy of a module, never one a caller trains.

    Raises:
        KeyError: ``module`` has no parameter ``name``.
    """
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        owner = owner._modules[part]  # type: ignore[assignment]
    if leaf not in owner._parameters:
        raise KeyError(f"module {type(module).__name__} has no parameter {name!r}")
    owner._parameters[leaf] = value  # type: ignore[assignment]


def vjp(output: Tensor, inputs: Sequence[Tensor], grad: Tensor) -> tuple[Tensor | None, ...]:
    """``torch.autograd.grad(output, inputs, grad, allow_unused=True)``: the same engine call, its checks here.

    ``None`` for an input ``output`` does not depend on. Falls back to the
    public function where PyTorch no longer has the engine entry point.

    Raises:
        ValueError: ``grad`` does not have ``output``'s shape and dtype.
    """
    if grad.shape != output.shape or grad.dtype != output.dtype:
        raise ValueError(f"grad of shape {tuple(grad.shape)} ({grad.dtype}) for an output of shape "
                         f"{tuple(output.shape)} ({output.dtype})")
    run = getattr(torch.autograd.graph, "_engine_run_backward", None)
    if run is None:  # pragma: no cover - another PyTorch
        return torch.autograd.grad(output, list(inputs), grad, allow_unused=True)
    return tuple(run((output,), (grad,), False, False, tuple(inputs), True, accumulate_grad=False))
