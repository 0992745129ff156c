"""The native (C++) training step of a stacked model, where it can be built.

A stacked step launches a few hundred small kernels; from Python each launch
costs several microseconds of interpreter and argument handling, which was
most of a small stack's step. ``native_step.cpp`` is the same step (the
mini-batch gather, :meth:`~.stacked.StackedMLP.forward` with a tape, the
binary task loss and its gradient, :func:`~.stacked_backward.backward_`, the
Adam update, the step's gate entropies) and the per-epoch evaluation (the
validation loss and gate summaries), written against ATen's C++ API: the same
kernels with the same arguments in the same order, hence bit-identical
results (``tests/training/test_native.py`` checks it against the Python step;
``scripts/check_equivalence.py`` against the reference trainer). Element-wise
chains are fused into loops whose formulation is measured against ATen's
kernels at load (:func:`set_fused`). The Python step stays the definition and
the fallback.

The library is compiled once with PyTorch's C++ extension builder (about
15 s) into :func:`library_path` and loaded directly afterwards, in the parent
process before workers fork. Where it cannot be built (no compiler), or with
``LEARNACT_NATIVE=0``, the vectorised engine uses the Python step, with the
same results.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..model.activations.candidates import Candidate, candidate_derivative, get_candidate
from ._products import product_choice, use_member_loop
from .segments import parameter_names
from .stacked import StackedMLP, reads_stack

__all__ = ["SPEC_VERSION", "NativeStack", "SegmentDescription", "StackDescription", "UnitDescription", "available",
           "candidate_code", "describe", "feature", "library_path", "load", "set_fused", "supports"]


_SOURCE = Path(__file__).with_name("native_step.cpp")
#: No fused multiply-add unless the source writes one (std::fma): see native_step.cpp.
_CFLAGS = ("-O3", "-march=native", "-ffp-contract=off")

#: The layout of the stack description (:meth:`StackDescription.encode`) the C++ reads; it checks the number
#: each description starts with, and :func:`load` checks the library's (``layout()``) against this one.
SPEC_VERSION = 4

_KINDS = {"fixed": 0, "layer": 1, "neuron": 2, "input": 3}
_FAMILY_KIND = 4
_SOURCES = {"network": 0, "layer": 1}
_ENTROPY = {"none": 0, "weighted": 1, "masked": 2}

_STATE: dict[str, object] = {}


def _cpu_flags() -> str:
    """This CPU's feature flags (the build uses ``-march=native``), or ``""`` where unknown."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return ""


def library_path() -> Path:
    """Where the built library lives: one folder per source, flags, PyTorch, Python and CPU.

    ``LEARNACT_NATIVE_DIR`` overrides the root (default ``~/.cache/learnact``).
    """
    key = hashlib.sha256("\0".join([
        _SOURCE.read_text(), " ".join(_CFLAGS), torch.__version__, sys.version, platform.machine(), _cpu_flags(),
    ]).encode()).hexdigest()[:16]
    root = Path(os.environ.get("LEARNACT_NATIVE_DIR") or Path.home() / ".cache" / "learnact")
    return root / f"native-{key}" / "learnact_native.so"


def _switched_off(variable: str) -> bool:
    """Whether environment ``variable`` says off (``0``, ``false``, ``no`` or ``off``)."""
    return os.environ.get(variable, "1").strip().lower() in ("0", "false", "no", "off")


def load() -> bool:
    """Build (once) and load the native step; whether it is available.

    A library built before for this source, PyTorch, Python and CPU is loaded
    directly (:func:`library_path`); otherwise PyTorch's extension builder
    compiles it there (about 15 s). ``LEARNACT_NATIVE=0`` turns the native
    step off. A failed build is reported once as a warning naming the cause;
    the engine then uses the Python step.
    """
    if "ok" in _STATE:
        return bool(_STATE["ok"])
    ok = False
    if _switched_off("LEARNACT_NATIVE"):
        _STATE["ok"] = False
        return False
    try:
        path = library_path()
        if path.is_file():
            torch.ops.load_library(str(path))
        else:
            from torch.utils.cpp_extension import load as build

            path.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                build("learnact_native", [str(_SOURCE)], extra_cflags=list(_CFLAGS), build_directory=str(path.parent),
                      is_python_module=False, verbose=False)
        ok = hasattr(torch.ops.learnact_native, "train_step")
        version = int(torch.ops.learnact_native.layout()[0]) if hasattr(torch.ops.learnact_native, "layout") else 0
        if ok and version != SPEC_VERSION:
            raise RuntimeError(f"the library at {path} reads stack descriptions of version {version}, not "
                               f"{SPEC_VERSION}; delete it to rebuild")
        if ok:
            set_fused(not _switched_off("LEARNACT_NATIVE_FUSE"))
            # the library is built from this source (its path follows the source's hash), so every op is there;
            # the passes whose sums follow ATen's order of a last-axis sum need that order found first
            summed = int(torch.ops.learnact_native.calibrate_kernel_sum()) > 0
            _STATE.update(kernel_terms=summed, rational=summed, maxout=summed, spline3=True, pwl=True)
            # the Python step's per-member product loops (one call for all members; the same products)
            use_member_loop(torch.ops.learnact_native.member_products)
    except Exception as exc:  # noqa: BLE001 - any build failure means: use the Python step
        ok = False  # a library that loaded but failed a check after (its description version) is not used
        warnings.warn(f"learnact: the native training step could not be built ({type(exc).__name__}: "
                      f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else 'no message'}); using the "
                      "Python step (same results, slower). Set LEARNACT_NATIVE=0 to skip the attempt.",
                      RuntimeWarning, stacklevel=2)
    _STATE["ok"] = ok
    return ok


def set_fused(enable: bool) -> dict[str, int]:
    """Turn the native step's fused element-wise loops on or off; what calibration found.

    The loops (a gated layer's mixture and the gradient of its
    pre-activation, the Adam update; the gate gradients' products; the entropy
    term's gradient) compute with the formulation each ATen kernel uses, found
    by running it on random data (``-1`` in the returned map: none matched).
    ``fused`` (mixture, gradient and Adam), ``gate_sums`` and ``entropy`` say
    which loops are on: each only where its whole result agreed with the ATen
    calls it replaces. ``LEARNACT_NATIVE_FUSE=0`` starts with them off.
    """
    names = ("tanh_backward", "sigmoid_backward", "add_alpha", "lerp", "addcmul", "div_scalar", "addcdiv", "mix",
             "fused", "gate_sums", "entropy")
    return dict(zip(names, torch.ops.learnact_native.calibrate(enable), strict=True))


def available() -> bool:
    """Whether the native step is loaded (without trying to build it)."""
    return bool(_STATE.get("ok", False))


def feature(name: str) -> bool:
    """Whether the loaded library offers ``name`` and it passed its calibration at load (without building).

    ``"kernel_terms"``: the kernel family's pass (``kernel_forward`` /
    ``kernel_backward``), its dictionary terms fused, whose sums add in the
    order ATen's sum over the last axis adds, with the vector width
    ``calibrate_kernel_sum()`` found (none found: off). ``"spline3"``: the
    cubic spline family's pass, its element-wise part fused (``spline3_forward`` /
    ``spline3_backward``); ``"rational"``: the rational family's pass, fused, its
    sums over the coefficients with that calibration too; ``"maxout"``: the
    maxout family's backward, fused, its sums over the pieces likewise;
    ``"pwl"``: the pwl family's pass (per-layer values), fused.
    """
    return available() and bool(_STATE.get(name, False))


_PROBED: dict[str, tuple[Candidate, int | None]] = {}


def candidate_code(name: str) -> int | None:
    """The native step's code for the registered candidate ``name``, or ``None`` where it has none.

    Derived from the registry, not kept by hand: the code whose C++ kernel and
    derivative (``candidate`` and ``candidate_backward`` of ``native_step.cpp``)
    give the registered function's values and registered derivative's
    gradients bit for bit on a probe (random values of both signs, large and
    tiny ones, over a whole number of vector chunks and a ragged tail). So a
    candidate you register as, say, ``torch.tanh`` trains in the native step
    under its own name, and one without a registered derivative, or whose
    function no C++ kernel reproduces (``elu``, ``sin``), uses the Python step.
    Probed once per registered function, after :func:`load`.
    """
    fn = get_candidate(name)
    cached = _PROBED.get(name)
    if cached is not None and cached[0] is fn:
        return cached[1]
    code: int | None = None
    derivative = candidate_derivative(fn)
    if derivative is not None:
        gen = torch.Generator().manual_seed(0)
        z = torch.cat([torch.randn(4096 + 13, generator=gen) * 4,
                       torch.tensor([0.0, -0.0, 1e-30, -1e-30, 25.0, -25.0, 90.0, -90.0])])
        g = torch.randn(z.shape, generator=gen)
        with torch.no_grad():
            y = fn(z)
            want = derivative(g, z, y)
            for c in range(int(torch.ops.learnact_native.layout()[1])):
                if (torch.equal(torch.ops.learnact_native.candidate(c, z), y)
                        and torch.equal(torch.ops.learnact_native.candidate_backward(c, g, z, y), want)):
                    code = c
                    break
    _PROBED[name] = (fn, code)
    return code


def supports(stack: StackedMLP, binary: bool) -> bool:
    """Whether the native step can train ``stack``: a binary task, candidates it has a code for
    (:func:`candidate_code`) and learnable families it runs (:attr:`.FamilyOps.in_native_step`:
    the families of :data:`.family_segments.NATIVE_STEP_FAMILIES` with the pass it repeats). Call after
    :func:`load`.

    A stack with another family layer (a plugin's, a per-unit pwl or neural) trains with the Python step.
    """
    return binary and all(
        (ops is not None and ops.in_native_step) if a.kind == "family"
        else a.kind in _KINDS and all(candidate_code(n) is not None for n in a.candidates)
        for seg in stack.segments for a, ops in zip(seg.layers, seg.families, strict=True))


@dataclass(frozen=True)
class UnitDescription:
    """One hidden layer of a segment, as the native step reads it.

    Attributes:
        kind: ``"fixed"``, ``"layer"``, ``"neuron"``, ``"input"`` (the gate kind) or ``"family"``.
        source: An input gate's context, ``"network"`` (the network's input) or ``"layer"`` (the layer's);
            ``"network"`` for the other kinds.
        candidates: The candidate names, in mixture order (one for a fixed layer, none for a family).
        family: A family layer's family code (:data:`.family_segments.NATIVE_STEP_FAMILIES`), else -1.
        parameters: A family layer's parameter count.
        extra: A family layer's buffer count (:attr:`.family_segments.NativeStepArgs.extra`).
        ints: A family layer's integer hyper-parameters.
    """

    kind: str
    source: str
    candidates: tuple[str, ...]
    family: int = -1
    parameters: int = 0
    extra: int = 0
    ints: tuple[int, ...] = ()


@dataclass(frozen=True)
class SegmentDescription:
    """One segment: ``size`` members (stack rows) sharing an activation signature.

    Attributes:
        size: Members in the segment.
        entropy: The entropy term: ``"none"``, ``"weighted"`` (a per-member weight) or ``"masked"`` (a weight
            and an on/off mask).
        units: One per hidden layer.
    """

    size: int
    entropy: str
    units: tuple[UnitDescription, ...]


@dataclass(frozen=True)
class StackDescription:
    """A stack's structure as the native step reads it: named here, encoded once (:meth:`encode`).

    Attributes:
        hidden_layers: Hidden layers of the backbone.
        segments: The segments, in stack-row order.
    """

    hidden_layers: int
    segments: tuple[SegmentDescription, ...]

    def encode(self) -> list[int]:
        """The integer list ``native_step.cpp`` reads: :data:`SPEC_VERSION`, then the fields in order."""
        spec = [SPEC_VERSION, self.hidden_layers, len(self.segments)]
        for seg in self.segments:
            spec += [seg.size, _ENTROPY[seg.entropy]]
            for unit in seg.units:
                if unit.kind == "family":
                    spec += [_FAMILY_KIND, 0, 0, unit.family, unit.parameters, unit.extra, len(unit.ints), *unit.ints]
                    continue
                codes = [candidate_code(n) for n in unit.candidates]
                if any(c is None for c in codes):
                    raise ValueError(f"the native step has no code for candidates {list(unit.candidates)}; "
                                     "check supports() first")
                # a candidate that reads the contiguous stack (stacked.reads_stack): its code plus the number of codes
                n_codes = int(torch.ops.learnact_native.layout()[1])
                fns = [get_candidate(n) for n in unit.candidates]
                spec += [_KINDS[unit.kind], _SOURCES[unit.source], len(codes),
                         *(int(c or 0) + n_codes * reads_stack(f, candidate_derivative(f)) for c, f in zip(codes, fns,
                                                                                                              strict=True))]
        return spec


def describe(stack: StackedMLP, entropy_weights: Sequence[tuple[Tensor, Tensor | None] | None]) -> StackDescription:
    """The :class:`StackDescription` of ``stack`` with its segments' entropy weights (see :class:`NativeStack`)."""
    segments = []
    for seg, lam, units in zip(stack.segments, entropy_weights, zip(*stack.units, strict=True), strict=True):
        entropy = "none" if lam is None else ("weighted" if lam[1] is None else "masked")
        described = []
        for unit, act in zip(units, seg.layers, strict=True):
            if unit.family is not None:
                args = unit.family.native_step_args(unit.params, unit.grads)
                described.append(UnitDescription("family", "network", (), args.code, len(args.params),
                                                 len(args.extra), tuple(args.ints)))
            else:
                described.append(UnitDescription(unit.kind, "layer" if unit.source == "layer" else "network",
                                                 tuple(act.candidates)))
        segments.append(SegmentDescription(seg.size, entropy, tuple(described)))
    return StackDescription(len(stack.hidden), tuple(segments))


def _real_ranges(stack: StackedMLP) -> list[int]:
    """``(offset, length)`` pairs of the flat buffer holding real parameters: all but the dummy gate rows.

    A member without a gate parameter (a fixed member next to gated ones) has
    a zero row for it, with zero gradient; Adam would keep it zero, so the
    fused update skips it.
    """
    layout = stack.layout
    own: dict[str, list[tuple[int, int]]] = {}
    for seg in stack.segments:
        for layer, act in enumerate(seg.layers):
            for name in parameter_names(act, layer):
                own.setdefault(name, []).append((seg.start, seg.start + seg.size))
    spans: list[list[int]] = []
    for name, start, size in zip(layout.names, layout.starts, layout.sizes, strict=True):
        rows = [(0, layout.n_members)] if ".activation." not in name else own.get(name, [])
        for a, b in rows:
            lo, n = start + a * size, (b - a) * size
            if spans and spans[-1][0] + spans[-1][1] == lo:
                spans[-1][1] += n
            else:
                spans.append([lo, n])
    return [v for span in spans for v in span]


class NativeStack:
    """A stack's description for the native step, valid until the stack is compacted.

    Args:
        stack: The stacked model.
        entropy_weights: Per segment, ``None`` or ``(lam, mask or None)``
            (as :func:`~.stacked_backward.backward_` takes them).
        optimiser: ``exp_avg``, ``exp_avg_sq`` and ``denom`` buffers.
        lr, weight_decay: Adam's settings.
        batch_sizes: Every mini-batch and evaluation size the stack will see.
    """

    def __init__(self, stack: StackedMLP, entropy_weights: Sequence[tuple[Tensor, Tensor | None] | None],
                 optimiser: Sequence[Tensor], lr: float, weight_decay: float, batch_sizes: Sequence[int]) -> None:
        tensors: list[Tensor] = []
        for W, b, gW, gb in stack.linears:
            tensors += [W, b, gW, gb]
        tensors += [stack.flat, stack.grad, *optimiser]
        self.description = describe(stack, entropy_weights)
        spec = self.description.encode()
        self.gated: list[list[bool]] = []  # per segment, per hidden layer: whether it has gate weights
        self._rows: list[tuple[int, int]] = []  # per segment: (first stack row, members)
        shapes = {tuple(W.shape[1:]) for W, *_ in stack.linears}
        per_element: set[tuple[int, int, int]] = set()  # (units per row, o, i): products over every element of a layer
        # the tensors in the order the description implies (native_step.cpp: "Layout of the arguments")
        for seg, lam, units in zip(stack.segments, entropy_weights, zip(*stack.units, strict=True), strict=True):
            if lam is not None:
                tensors.append(lam[0])
                if lam[1] is not None:
                    tensors.append(lam[1])
            flags = []
            for layer, unit in enumerate(units):
                flags.append(unit.kind != "fixed" and unit.family is None)
                if unit.family is not None:
                    args = unit.family.native_step_args(unit.params, unit.grads)
                    tensors += [*args.params, *args.grads, args.hp, *args.extra]
                    if unit.family.family == "neural":  # its two Linears map each element: (b * width, 1 <-> h)
                        width, hidden = int(stack.linears[layer][0].shape[1]), int(args.params[0][0].numel())
                        per_element |= {(width, hidden, 1), (width, 1, hidden)}
                elif unit.kind != "fixed":
                    tensors += [unit.temperature, *unit.params, *unit.grads]
                if unit.kind == "input":
                    shapes |= {tuple(unit.params[0].shape[1:]), tuple(unit.params[2].shape[1:])}
            self.gated.append(flags)
            self._rows.append((seg.start, seg.size))
        choices: list[int] = []
        for size in sorted(set(batch_sizes)):
            rows = [(size, o, i) for o, i in sorted(shapes)] + [(size * w, o, i) for w, o, i in sorted(per_element)]
            for n_rows, o, i in rows:
                for code, kind in enumerate(("fwd", "wgrad", "xgrad")):  # the C++ side's product kinds
                    choices += [code, n_rows, i, o, product_choice(kind, n_rows, i, o)]
        self._args = (tensors, spec, choices)
        self._ranges = _real_ranges(stack)
        self._scalars = [float(lr), float(weight_decay)]

    def step(self, x_rows: Tensor, y_rows: Tensor, index: Tensor, lo: int, nb: int, step: int
             ) -> tuple[Tensor, Tensor]:
        """One training step on the mini-batch ``index[:, lo:lo + nb]`` (rows of ``x_rows`` / ``y_rows``).

        Returns:
            ``(task, entropy)``: each member's task loss ``(K,)`` and its
            summed layer gate entropies ``(K,)`` (zero without gates), as
            :func:`~.stacked_records.step_entropies` gives them.
        """
        task, entropy = torch.ops.learnact_native.train_step(*self._args, self._ranges, self._scalars, x_rows, y_rows,
                                                             index, lo, nb, step)
        return task, entropy

    def evaluate(self, x: Tensor, y: Tensor) -> tuple[Tensor, list[tuple[int, int, list]]]:
        """Each member's task loss on ``(x, y)`` and, per gated segment, ``(start, size, per-layer gate summary)``.

        The summaries are :func:`~.stacked_records.gate_summary`'s (``None``
        for a fixed layer).
        """
        out = torch.ops.learnact_native.evaluate(*self._args, x, y)
        it = iter(out[1:])
        summaries = [(start, size, [(next(it), next(it)) if gated else None for gated in flags])
                     for (start, size), flags in zip(self._rows, self.gated, strict=True) if any(flags)]
        return out[0], summaries
