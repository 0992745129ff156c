"""Learned activations in any PyTorch model: convert, freeze, penalise, summarise, record.

- :func:`convert` replaces activation modules (``nn.ReLU``, ``nn.GELU``, ...) of
  any model, nested anywhere, with learned ones, inferring each one's width.
- :func:`freeze` turns every static gated mixture into a fixed module for
  deployment (its arg-max candidate, or the learned blend as buffers).
- :func:`entropy_penalty`, :func:`summarize` and :class:`GateRecorder` work on
  any model that contains learnable activations.

Only modules are replaced: activations called as functions inside a custom
``forward`` (``F.relu(x)``) are not seen.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from .._checks import did_you_mean
from ..config import ActivationConfig
from .activations import FixedActivation, GatedActivation, ParametricActivation
from .activations.candidates import list_candidates
from .activations.families import list_families
from .activations.frozen import FrozenMixture
from .activations.gated import gate_entropy
from .backbone import build_activation

__all__ = [
    "DEFAULT_TYPES",
    "GateRecorder",
    "Replacement",
    "convert",
    "entropy_penalty",
    "freeze",
    "summarize",
]

DEFAULT_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU)

ActivationFactory = Callable[[int | None, int], nn.Module]


@dataclass(frozen=True)
class Replacement:
    """One module :func:`convert` replaced.

    Attributes:
        path: Dotted path in the model (``"features.2"``, ``"block.act"``).
        old_type: The class of the module that was there.
        new: The module put in its place.
        width: Units/channels it acts on (``None`` when unknown and not needed).
        dim: The unit axis it was built with (``-1`` for ``(N, F)``, ``1`` for feature maps).
    """

    path: str
    old_type: type[nn.Module]
    new: nn.Module
    width: int | None
    dim: int


def _factory(activation: ActivationFactory | ActivationConfig | str) -> tuple[ActivationFactory, bool]:
    """A ``(width, dim) -> module`` factory and whether it needs the width."""
    if isinstance(activation, str):
        if activation in list_families():
            activation = ActivationConfig(kind=activation)
        elif activation in list_candidates() or ":" in activation:  # a candidate, or one by import path
            activation = ActivationConfig(kind="fixed", activation=activation)
        else:
            raise ValueError(f"activation {activation!r} is neither a family ({', '.join(list_families())}) nor a "
                             f"candidate ({', '.join(list_candidates())})"
                             f"{did_you_mean(activation, [*list_families(), *list_candidates()])}; pass one of "
                             f"those names, an ActivationConfig or a callable (width, dim) -> nn.Module")
    if isinstance(activation, ActivationConfig):
        cfg = activation
        needs = (cfg.kind == "gated" and cfg.gate != "layer") or (
            cfg.kind not in ("fixed", "gated") and cfg.family_params().granularity == "unit")
        return (lambda width, dim: build_activation(cfg, width, width, dim=dim)), needs
    if isinstance(activation, nn.Module) or isinstance(activation, type):
        # one module cannot go in several places, and a class is not called as (width, dim)
        what = (f"the module {type(activation).__name__}()" if isinstance(activation, nn.Module)
                else f"the class {activation.__name__}")
        raise TypeError(f"activation is {what}; convert needs a new module for every place: pass a factory such as "
                        f"lambda width, dim: {getattr(activation, '__name__', type(activation).__name__)}(...), a "
                        f"name or an ActivationConfig")
    if callable(activation):
        return activation, False
    raise TypeError(f"activation must be a callable (width, dim) -> nn.Module, an ActivationConfig or a name, "
                    f"got {type(activation).__name__}")


def _widths_from_layers(model: nn.Module, targets: set[str]) -> dict[str, tuple[int, int]]:
    """``path -> (width, dim)`` from the preceding Linear / Conv / BatchNorm / GroupNorm, in registration order."""
    found: dict[str, tuple[int, int]] = {}
    last: tuple[int, int] | None = None
    for path, m in model.named_modules(remove_duplicate=False):
        if isinstance(m, nn.Linear):
            last = (m.out_features, -1)
        elif isinstance(m, _ConvNd):
            last = (m.out_channels, 1)
        elif isinstance(m, _BatchNorm):
            last = (m.num_features, 1)
        elif isinstance(m, nn.GroupNorm):
            last = (m.num_channels, 1)
        elif path in targets and last is not None:
            found[path] = last
    return found


class _Probe(nn.Module):
    """Stands in for one place of a module during :func:`_widths_from_forward`: records the shape of each input
    it gets there, then calls the module."""

    def __init__(self, inner: nn.Module, events: list) -> None:
        super().__init__()
        self.inner = inner
        self.shapes: list[torch.Size] = []
        self.events = events  # shared with the layers' hooks: the order things ran in

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], Tensor):
            self.shapes.append(args[0].shape)
            self.events.append(self)
        return self.inner(*args, **kwargs)


def _layer_units(m: nn.Module) -> tuple[int, int] | None:
    """``(width, axis)`` of the units a layer's output has (``Linear``: last axis; conv, batch/group norm: 1)."""
    if isinstance(m, nn.Linear):
        return m.out_features, -1
    if isinstance(m, _ConvNd):
        return m.out_channels, 1
    if isinstance(m, _BatchNorm):
        return m.num_features, 1
    if isinstance(m, nn.GroupNorm):
        return m.num_channels, 1
    return None


def _widths_from_forward(model: nn.Module, targets: dict[str, nn.Module], sample_input: Any,
                         dim: int | None, layers: dict[str, tuple[int, int]],
                         needs_width: bool = True) -> dict[str, tuple[int, int]]:
    """``path -> (width, dim)`` read from each target's input in one forward pass (no grad, eval mode).

    Each place stands in for itself (a :class:`_Probe` there for the pass), so a module used at several places
    (one ``nn.ReLU()`` after layers of different widths) gets each place's width, as :func:`convert` gives each
    place its own module. The unit axis is ``dim`` when given; else the axis of the units of the layer that ran
    last before it in this pass (a ``Linear``, conv or norm layer; a transformer's ``linear1``, though ``linear2``
    is registered before its activation), or of the one before it in registration order (``layers``,
    :func:`_widths_from_layers`), where the input has that many units there (a ``Linear`` on an ``(N, T, F)``
    sequence: the last axis); else ``1`` for inputs of more than two dimensions, ``-1`` otherwise. A place
    called at two widths is refused only where the new module needs its width (``needs_width``).
    """
    events: list = []
    probes = {path: _Probe(m, events) for path, m in targets.items()}
    hooks = [m.register_forward_hook(lambda mod, _i, _o, units=units: events.append(units))
             for m in model.modules() if not isinstance(m, _Probe) and (units := _layer_units(m)) is not None]
    modes = {m: m.training for m in model.modules()}
    # a transformer layer's fused inference path would not call its activation, nor so the probe
    fused = {m: m.activation_relu_or_gelu for m in model.modules() if isinstance(m, nn.TransformerEncoderLayer)}

    def put(path: str, module: nn.Module) -> None:
        parent_path, _, name = path.rpartition(".")
        setattr(model.get_submodule(parent_path), name, module)

    try:
        for path, probe in probes.items():
            put(path, probe)
        for layer in fused:
            layer.activation_relu_or_gelu = 0
        model.eval()
        with torch.no_grad():
            model(*sample_input) if isinstance(sample_input, tuple) else model(sample_input)
    finally:
        for h in hooks:
            h.remove()
        for path, m in targets.items():
            put(path, m)
        for layer, flag in fused.items():
            layer.activation_relu_or_gelu = flag
        for m, mode in modes.items():
            m.train(mode)
    found: dict[str, tuple[int, int]] = {}
    for path, probe in probes.items():
        if not probe.shapes:
            continue
        shape = probe.shapes[0]
        axis = dim if dim is not None else (1 if len(shape) > 2 else -1)
        if dim is None:
            first = events.index(probe)
            ran = next((e for e in reversed(events[:first]) if isinstance(e, tuple)), None)
            for width, layer_axis in (c for c in (ran, layers.get(path)) if c is not None):
                if -len(shape) <= layer_axis < len(shape) and shape[layer_axis] == width:
                    axis = layer_axis
                    break
        widths = {s[axis] for s in probe.shapes}
        if len(widths) > 1:
            if not needs_width:  # a per-layer activation: its width does not matter
                continue
            raise ValueError(f"module {path!r} is called on inputs with different sizes on axis {axis} "
                             f"({sorted(widths)}); give each call its own module before converting")
        found[path] = (widths.pop(), axis)
    return found


_LEARNACT_MODULES: tuple[type[nn.Module], ...] = (GatedActivation, ParametricActivation, FixedActivation,
                                                 FrozenMixture)
"""learnact's own activation modules: :func:`convert` leaves them, and whatever they hold (an input gate's gating
head, with its ReLU), alone, so converting a converted model changes nothing there."""


def _check_model(model: object, caller: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{caller}: model must be a torch.nn.Module, got {type(model).__name__}")


def _check_types(types: type[nn.Module] | Sequence[type[nn.Module]]) -> tuple[type[nn.Module], ...]:
    """``types`` as a tuple of module classes (one class alone is accepted too)."""
    kinds = (types,) if isinstance(types, type) else tuple(types) if isinstance(types, (list, tuple, set)) else None
    if kinds is None or not kinds or not all(isinstance(k, type) and issubclass(k, nn.Module) for k in kinds):
        raise TypeError(f"types must be nn.Module classes, e.g. types=(nn.ReLU, nn.GELU), got types={types!r}")
    return kinds


def _targets(model: nn.Module, kinds: tuple[type[nn.Module], ...]) -> dict[str, nn.Module]:
    """``path -> module`` of every module of ``kinds`` in ``model`` (each place of a shared one), except the
    model itself and anything inside learnact's own activation modules, in registration order."""
    own = [p for p, m in model.named_modules(remove_duplicate=False) if isinstance(m, _LEARNACT_MODULES)]

    def inside_own(path: str) -> bool:
        return any(o == "" or path.startswith(f"{o}.") for o in own)

    return {p: m for p, m in model.named_modules(remove_duplicate=False)
            if p and isinstance(m, kinds) and not isinstance(m, _LEARNACT_MODULES) and not inside_own(p)}


def convert(
    model: nn.Module,
    activation: ActivationFactory | ActivationConfig | str,
    *,
    types: type[nn.Module] | Sequence[type[nn.Module]] = DEFAULT_TYPES,
    inplace: bool = False,
    sample_input: Any = None,
    dim: int | None = None,
) -> tuple[nn.Module, list[Replacement]]:
    """Replace every activation module of ``types`` in ``model`` with a learned one.

    Args:
        model: Any ``nn.Module``; activations nested in ``Sequential``,
            ``ModuleList``, ``ModuleDict`` or attributes of custom modules are found.
        activation: What to put in: a callable ``(width, dim) -> nn.Module``
            (``width`` may be ``None`` when it cannot be inferred), an
            :class:`~learnact.config.ActivationConfig` (as in a study), or a name:
            a family (``"prelu"``, its defaults) or a candidate (a fixed activation).
        types: Module classes to replace (instances of subclasses too); one class alone is accepted.
        inplace: Modify ``model`` itself; by default a deep copy is converted and
            the original is untouched.
        sample_input: An input (or a tuple of positional inputs) for one forward pass
            that reads each replaced module's input shape: authoritative for the
            width (the size on the unit axis) and the axis (the preceding
            layer's, below, where the input's size there matches it: ``-1`` for a
            ``Linear`` on an ``(N, T, F)`` sequence; else ``1`` for inputs of
            more than two dimensions, ``-1`` otherwise). Without it, each width is
            the preceding layer's (``Linear.out_features`` -> ``dim=-1``;
            ``Conv*.out_channels``, ``BatchNorm*.num_features``,
            ``GroupNorm.num_channels`` -> ``dim=1``), in registration order.
        dim: Force the unit axis for every replacement.

    learnact's own activation modules (and what they hold: an input gate's
    gating head) are left alone, so converting a converted model changes
    nothing there. Each place of a module used at several places gets its own
    new module. The new modules take the training mode of the ones they
    replace. An ``nn.TransformerEncoderLayer`` whose activation is replaced no
    longer takes PyTorch's fused inference path, which would compute the ReLU
    or GELU it was built with instead of the new module (PyTorch does the same
    for a layer built with any other activation).

    Returns:
        ``(model, replaced)``: the converted model (``model`` itself when
        ``inplace``; a model that is itself one activation of ``types`` comes
        back as its replacement, path ``""``) and one :class:`Replacement` per
        replaced module, in registration order. The new modules are moved to the
        device and dtype of the model's first parameter.

    Raises:
        ValueError: a per-unit activation whose width cannot be inferred (the
            message names the module path; pass ``sample_input``), or an unknown name.
        TypeError: ``model`` is not a module, ``types`` not module classes, or
            ``activation`` a module instance or class (one module cannot go in
            several places: pass a factory) or a factory that returns no module.
    """
    _check_model(model, "convert")
    kinds = _check_types(types)
    make, needs_width = _factory(activation)
    if isinstance(model, kinds) and not isinstance(model, _LEARNACT_MODULES):  # the model is one activation
        _, inner = convert(nn.Sequential(model), activation, types=kinds, inplace=inplace,
                           sample_input=sample_input, dim=dim)
        return inner[0].new, [Replacement("", r.old_type, r.new, r.width, r.dim) for r in inner]
    target = model if inplace else copy.deepcopy(model)
    paths = _targets(target, kinds)
    inferred = _widths_from_layers(target, set(paths))
    if sample_input is not None:
        inferred.update(_widths_from_forward(target, paths, sample_input, dim, inferred, needs_width))
    first = next(target.parameters(), None)
    replaced: list[Replacement] = []
    for path, old in paths.items():
        width, axis = inferred.get(path, (None, -1))
        if dim is not None:
            axis = dim
        unknown = (f"cannot infer the width of {path!r} ({type(old).__name__}): no Linear, Conv or BatchNorm "
                   f"precedes it and no sample_input reached it; pass sample_input=<a batch> to convert() so a "
                   f"forward pass reads its input shape")
        if width is None and needs_width:
            raise ValueError(unknown)
        try:
            new = make(width, axis)
        except (ValueError, TypeError) as err:
            if width is None:
                raise ValueError(f"{unknown} (the activation said: {err})") from err
            raise
        if not isinstance(new, nn.Module):
            raise TypeError(f"the activation factory returned {type(new).__name__} for {path!r}, not an nn.Module; "
                            f"return a module, e.g. lambda width, dim: nn.PReLU()")
        if first is not None:
            new = new.to(device=first.device, dtype=first.dtype if first.is_floating_point() else None)
        new.train(old.training)  # a model converted in eval mode stays in eval mode (a factory's Dropout, say)
        parent_path, _, name = path.rpartition(".")
        parent = target.get_submodule(parent_path)
        setattr(parent, name, new)
        if name == "activation" and isinstance(parent, nn.TransformerEncoderLayer):
            # its fused inference path (eval mode, no grad) computes the ReLU or GELU the layer was built with
            # itself, not its activation module; PyTorch leaves that path for any other activation
            parent.activation_relu_or_gelu = 0
        replaced.append(Replacement(path, type(old), new, width, axis))
    return target, replaced


def freeze(model: nn.Module, mode: Literal["argmax", "blend"] = "argmax", *,
           inplace: bool = False) -> nn.Module:
    """Replace every static :class:`GatedActivation` by a non-learnable module.

    ``mode="argmax"``: a layer gate becomes a :class:`FixedActivation` of its
    arg-max candidate; a per-neuron/channel gate a per-unit selection (each unit
    applies its own arg-max candidate). ``mode="blend"``: the fixed mixture, the
    learned weights ``softmax(z / T)`` stored as buffers (output equal to the
    gated module's). Ties go to the first candidate.

    Raises:
        ValueError: an input-dependent gate (its weights depend on the input, so
            there is no fixed choice to freeze), or an unknown ``mode``.
    """
    if mode not in ("argmax", "blend"):
        raise ValueError(f"mode must be 'argmax' or 'blend', got mode={mode!r}")
    _check_model(model, "freeze")
    target = model if inplace else copy.deepcopy(model)
    # every place of a gate used at several (named_modules lists a shared module once by default)
    gated = [(p, m) for p, m in target.named_modules(remove_duplicate=False) if isinstance(m, GatedActivation)]
    for path, m in gated:
        if m.gate == "input":
            raise ValueError(f"cannot freeze {path!r}: its gate is input-dependent (gate='input'), so its weights "
                             f"change with every input; freeze models with 'layer' or 'neuron' gates only")
    for path, m in gated:
        with torch.no_grad():
            weights = m.gate_weights().detach().clone()
        new: nn.Module
        if mode == "argmax" and m.gate == "layer":
            new = FixedActivation(m.candidates[int(weights.argmax())])
        else:
            new = FrozenMixture(m.candidates, weights, dim=m.dim, select=(mode == "argmax"))
        parent_path, _, name = path.rpartition(".")
        if not path:
            return new.to(weights.device)
        setattr(target.get_submodule(parent_path), name, new.to(weights.device))
    return target


def _gated(model: nn.Module) -> list[tuple[str, GatedActivation]]:
    _check_model(model, "learnact")
    return [(p, m) for p, m in model.named_modules() if isinstance(m, GatedActivation)]


def entropy_penalty(model: nn.Module) -> Tensor:
    """Summed mean gate entropy (nats) of every :class:`GatedActivation` in ``model``; differentiable.

    Static gates use their current weights. Input-dependent gates use the
    weights of their most recent forward pass (averaged over samples and
    positions), so call it after the forward pass of the batch being trained.

    Returns:
        A scalar tensor (``0.`` for a model without gated activations).

    Raises:
        ValueError: an input-dependent gate that holds no weights of a forward pass (none yet, or only
            inside a ``torch.func`` transform).
    """
    total: Tensor | None = None
    for path, m in _gated(model):
        if m.gate == "input":
            if m.last_weights is None:
                raise ValueError(f"entropy_penalty: the input-dependent gate {path!r} holds no weights of a forward "
                                 f"pass (none yet, or only inside torch.func transforms such as vmap, which keep "
                                 f"none); call the model on the batch first")
            h = gate_entropy(m.last_weights).mean()
        else:
            h = m.entropy()
        total = h if total is None else total + h
    return total if total is not None else torch.zeros(())


def _current_weights(m: GatedActivation) -> Tensor | None:
    """``(c,)`` (layer), ``(d, c)`` (neuron) or the last forward's ``(*, c)`` (input; ``None`` before one)."""
    if m.gate == "input":
        return None if m.last_weights is None else m.last_weights.detach()
    with torch.no_grad():
        return m.gate_weights().detach()


class Summary(list[dict[str, Any]]):
    """The rows of :func:`summarize`; ``str()`` gives an aligned text table."""

    def __str__(self) -> str:
        if not self:
            return "(no learnable activations)"
        cols = ["path", "class", "kind", "dim", "width", "n_parameters", "weights"]
        cells = [[str(r[c]) for c in cols] for r in self]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
        return "\n".join(lines)


def summarize(model: nn.Module, digits: int = 3) -> Summary:
    """One row per learnable activation (:class:`GatedActivation`, learnable families) in ``model``.

    Row keys: ``path``, ``class``, ``kind`` (gate kind or family name),
    ``candidates`` (gated only, else ``None``), ``dim``, ``width``,
    ``n_parameters``, ``weights`` (gated: ``{candidate: weight}`` rounded to
    ``digits``, averaged over units, samples and positions; ``None`` for an
    input gate before its first forward pass and for families).
    """
    _check_model(model, "summarize")
    rows = Summary()
    for path, m in model.named_modules():
        if isinstance(m, GatedActivation):
            w = _current_weights(m)
            mean = None if w is None else w.reshape(-1, m.n_candidates).mean(0)
            weights = None if mean is None else {n: round(float(v), digits)
                                                 for n, v in zip(m.candidates, mean, strict=True)}
            kind: str = m.gate
            cands: list[str] | None = list(m.candidates)
        elif isinstance(m, ParametricActivation):
            weights, kind, cands = None, m.family, None
        else:
            continue
        rows.append({"path": path, "class": type(m).__name__, "kind": kind, "candidates": cands, "dim": m.dim,
                     "width": m.width, "n_parameters": sum(p.numel() for p in m.parameters()), "weights": weights})
    return rows


class GateRecorder:
    """Records every gate's weights of a model, epoch by epoch, in a user's own training loop.

    ``record(epoch)`` snapshots each static gate's current weights and each
    input gate's weights from its most recent forward pass (averaged over
    samples and positions; skipped before its first). ``rows()`` gives tidy
    rows ``{"epoch", "path", "unit", "candidate", "weight"}`` (``unit`` is the
    unit/channel index of a per-neuron gate, ``None`` otherwise); ``to_frame()``
    the same as a pandas DataFrame.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._rows: list[dict[str, Any]] = []

    def record(self, epoch: int) -> None:
        """Snapshot the gate weights at ``epoch``."""
        for path, m in _gated(self.model):
            w = _current_weights(m)
            if w is None:
                continue
            if m.gate == "input":
                w = w.reshape(-1, m.n_candidates).mean(0)
            units: list[tuple[int | None, Tensor]] = ([(None, w)] if w.dim() == 1
                                                      else [(i, w[i]) for i in range(w.shape[0])])
            for unit, vec in units:
                for name, v in zip(m.candidates, vec.cpu().tolist(), strict=True):
                    self._rows.append({"epoch": epoch, "path": path, "unit": unit, "candidate": name, "weight": v})

    def rows(self) -> list[dict[str, Any]]:
        """The recorded rows, in recording order."""
        return list(self._rows)

    def to_frame(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (columns epoch, path, unit, candidate, weight)."""
        import pandas as pd

        return pd.DataFrame(self._rows, columns=["epoch", "path", "unit", "candidate", "weight"])
