"""The MLP backbone with a configurable activation per hidden layer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar, cast

import torch
from torch import Tensor, nn

from ..config import ActivationConfig
from .activations import FixedActivation, GatedActivation
from .activations.families import ParametricActivation, get_family

__all__ = ["MLP", "build_activation", "init_parameters_", "count_parameters"]

ActivationSpec = ActivationConfig | str
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def _as_config(spec: ActivationSpec) -> ActivationConfig:
    if isinstance(spec, ActivationConfig):
        return spec
    if isinstance(spec, str):
        from .. import names

        if spec in names.list_families():  # a learnable family by its name, as convert() takes it
            return ActivationConfig(kind=spec)
        from pydantic import ValidationError

        try:
            return ActivationConfig(kind="fixed", activation=spec)
        except ValidationError as exc:  # one line naming the value (pydantic's own text ran to four)
            message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ValueError(f"activation {spec!r}: {message}; or a learnable family: "
                             f"{', '.join(names.list_families())}") from None
    raise TypeError(f"activation must be an ActivationConfig or a name, got {type(spec).__name__}")


def build_activation(spec: ActivationSpec, width: int | None, context_dim: int | None,
                     dim: int = -1) -> nn.Module:
    """Build one hidden layer's activation module.

    Args:
        spec: An :class:`ActivationConfig` or a candidate name (fixed activation).
        width: Units of the layer (a per-unit family or gate has one parameter set each;
            ``None`` where none is needed: fixed, per-layer).
        context_dim: Width of the context an input-dependent gate reads.
        dim: The unit axis of the layer's input: ``-1`` for ``(N, F)``, ``1`` for
            ``(N, C, L)`` or ``(N, C, H, W)`` (passed to a family only when not ``-1``).
    """
    cfg = _as_config(spec)
    if cfg.kind == "fixed":
        return FixedActivation(cfg.activation)
    if cfg.kind != "gated":
        extra = {"dim": dim} if dim != -1 else {}
        return get_family(cfg.kind)(width=width, **extra, **cfg.family_params().model_dump())
    return GatedActivation(
        cfg.candidates, gate=cfg.gate, width=width, temperature=cfg.temperature,
        context_dim=context_dim, gate_hidden=cfg.gate_hidden, dim=dim,
    )


class _Block(nn.Module):
    """One hidden layer: ``linear`` then ``activation`` (state-dict keys ``linear.*``, ``activation.*``)."""

    def __init__(self, linear: nn.Linear, activation: nn.Module) -> None:
        super().__init__()
        self.linear = linear
        self.activation = activation


class MLP(nn.Module):
    """``in -> [Linear -> activation] x len(hidden) -> Linear -> out`` (logits).

    Args:
        in_features: Input width ``d``.
        hidden: Hidden widths, e.g. ``(64, 32)``, or one width (``64``).
        out_features: 1 for binary tasks (a logit), else the number of classes.
        activation: One spec shared by all hidden layers, or one per layer: a candidate's name (a fixed
            activation), a learnable family's name (``"spline"``, at its defaults) or an
            :class:`~learnact.config.ActivationConfig`.

    Modules are created layer by layer (Linear, then its activation, then the
    next layer), so seeding torch before construction fixes every initial value.

    Shape:
        - x: ``(b, in_features)``
        - output: ``(b, out_features)`` logits
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (64, 32),
        out_features: int = 1,
        activation: ActivationSpec | Sequence[ActivationSpec] = "relu",
    ) -> None:
        super().__init__()
        if isinstance(hidden, int) and not isinstance(hidden, bool):
            hidden = (hidden,)  # one hidden layer, as the scikit-learn estimators take hidden=64
        widths = list(hidden)
        if not widths:
            raise ValueError("hidden must list at least one layer width, got hidden=[]")
        for w in [in_features, *widths, out_features]:
            if isinstance(w, bool) or not isinstance(w, int) or w < 1:
                raise ValueError(f"layer widths must be integers >= 1, got hidden={widths}, "
                                 f"in_features={in_features}, out_features={out_features}")
        one = cast(ActivationSpec, activation)  # used only when it is not a list or tuple
        specs: list[ActivationSpec] = list(activation) if isinstance(activation, (list, tuple)) else [one] * len(widths)
        if len(specs) != len(widths):
            raise ValueError(f"got {len(specs)} activation specs for {len(widths)} hidden layers")
        configs = [_as_config(s) for s in specs]
        self.gate_sources = [c.gate_source if (c.kind == "gated" and c.gate == "input") else None
                             for c in configs]
        self.blocks: list[_Block] = nn.ModuleList()  # type: ignore[assignment]  # a ModuleList of _Block
        prev = in_features
        for width, cfg, source in zip(widths, configs, self.gate_sources, strict=True):
            context_dim = in_features if source == "network" else prev
            self.blocks.append(_Block(nn.Linear(prev, width), build_activation(cfg, width, context_dim)))
            prev = width
        self.head = nn.Linear(prev, out_features)
        self.in_features = in_features
        self.hidden = tuple(widths)
        self.out_features = out_features

    def forward_with_gates(self, x: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        """Logits and, per hidden layer, the gate weights used (``None`` if fixed)."""
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != self.in_features:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"the MLP takes a tensor of shape (batch, {self.in_features}), got {got}")
        h = x
        gates: list[Tensor | None] = []
        for block, source in zip(self.blocks, self.gate_sources, strict=True):
            act = block.activation
            z = block.linear(h)
            if isinstance(act, GatedActivation):
                context = x if source == "network" else h
                h, g = act.forward_with_weights(z, context)
                gates.append(g)
            else:
                h = act(z)
                gates.append(None)
        return self.head(h), gates

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_gates(x)[0]

    def gated_layers(self) -> list[GatedActivation]:
        """The gated activation modules, in layer order."""
        return [b.activation for b in self.blocks if isinstance(b.activation, GatedActivation)]

    @property
    def activations(self) -> list[nn.Module]:
        """The activation module of each hidden layer."""
        return [b.activation for b in self.blocks]


def init_parameters_(model: ModuleT, generator: torch.Generator) -> ModuleT:
    """Re-initialise every ``nn.Linear`` as PyTorch does, drawing from ``generator``.

    Layers are visited in registration order, which is construction order, so
    the values equal those of ``torch.manual_seed(s)`` followed by building the
    model, without touching the global random state. Gate logits stay at zero;
    learnable families redraw their random parameters, if any
    (:meth:`~learnact.model.activations.families.ParametricActivation.draw_parameters_`),
    and keep their fitted initial shapes.
    """
    for m in model.modules():
        if isinstance(m, ParametricActivation):
            m.draw_parameters_(generator)
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1 / math.sqrt(m.weight.shape[1]) if m.weight.shape[1] > 0 else 0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
