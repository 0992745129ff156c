"""Hyper-parameters of the learnable activation families: pydantic only, no torch.

Each family's class lists its fields with defaults, descriptions and checks;
``ActivationConfig.params`` is validated against the one of its ``kind``. The
built-in families are recorded in :mod:`learnact.names` here, so a study file
validates without importing the modules (:mod:`learnact.model.activations.families`,
which re-exports these classes).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import JsonDict

from . import names
from .names import check_candidate

__all__ = [
    "Granularity",
    "FamilyParams",
    "PReLUParams",
    "SwishParams",
    "RationalParams",
    "PiecewiseLinearParams",
    "MaxoutParams",
    "KernelParams",
    "NeuralParams",
    "SplineParams",
    "BUILTIN_FAMILY_PARAMS",
]


class _Frozen(BaseModel):
    # strict: a config file's "300" is an error, not silently the integer 300
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, strict=True,
                              allow_inf_nan=False)


Granularity = Literal["layer", "unit"]
"""How many parameter sets a learnable family has: one per layer, or one per unit (neuron)."""


class FamilyParams(_Frozen):
    """Hyper-parameters of a learnable family; each family extends this with its own fields.

    The built-in families' classes follow; ``ActivationConfig.params`` is
    validated against the one of its ``kind``.
    """

    granularity: Granularity = Field(
        "layer", description="'layer': one parameter set shared by the layer's units; 'unit': one per unit")


MAX_FLOAT32 = 3.4028234663852886e38
"""The largest float32: a setting that goes into a float32 tensor (a temperature, a learning rate, an initial
slope) must not exceed it in size; 1e39 became inf there (a run that "finished" with its gates stuck uniform)."""

FLOAT32: JsonDict = {"cap": "float32"}
"""``json_schema_extra`` of a float field bounded by :data:`MAX_FLOAT32`: its message names float32."""

MAX_RANGE = 1e6
"""The largest ``|lo|`` and ``|hi|`` of a family's range: its points are float32, and a range of ±1e300 overflowed
(an internal error instead of a config error)."""

MIN_SPAN = 1e-6
"""The narrowest ``hi - lo``, relative to the larger of 1, ``|lo|`` and ``|hi|``: the points of a narrower range
round to the same float32 values (1e-300 wide: a division by zero; 1e-3 wide at 1e6: a flat function)."""

MAX_SIZE = 1024
"""The most segments, dictionary points, pieces, hidden units or grid intervals a family unit takes."""

MAX_DEGREE = 25
"""The highest degree of a rational family's polynomials: x**1000 overflows float32 for any |x| > 1, and the least
squares fit of its initial shape did not converge (an internal error)."""


class _RangeParams(FamilyParams):
    lo: float = Field(-3.0, description="left end of the range the shape is defined on")
    hi: float = Field(3.0, description="right end of that range (> lo)")

    @model_validator(mode="after")
    def _range(self) -> _RangeParams:
        if not self.lo < self.hi:
            raise ValueError(f"lo must be < hi, got lo={self.lo:g}, hi={self.hi:g}")
        if max(abs(self.lo), abs(self.hi)) > MAX_RANGE:
            raise ValueError(f"lo and hi must lie within ±{MAX_RANGE:g} (the range's points are float32), got "
                             f"lo={self.lo:g}, hi={self.hi:g}")
        least = MIN_SPAN * max(1.0, abs(self.lo), abs(self.hi))  # float32 resolves 1e-6 of the values' size
        if self.hi - self.lo < least:
            raise ValueError(f"hi - lo must be at least {least:g} here ({MIN_SPAN:g} times the larger of 1, |lo| and "
                             f"|hi|: closer points round to the same float32), got lo={self.lo:.9g}, hi={self.hi:.9g}")
        return self


class PReLUParams(FamilyParams):
    """``prelu``: the initial negative slope."""

    init_slope: float = Field(0.25, ge=-MAX_FLOAT32, le=MAX_FLOAT32, json_schema_extra=FLOAT32,
                              description="initial slope a for x < 0")


class SwishParams(FamilyParams):
    """``swish``: the initial ``beta``."""

    init_beta: float = Field(1.0, ge=-MAX_FLOAT32, le=MAX_FLOAT32, json_schema_extra=FLOAT32,
                             description="initial beta (1: SiLU)")


class RationalParams(FamilyParams):
    """``rational``: degrees of numerator and denominator."""

    num_degree: int = Field(5, ge=1, le=MAX_DEGREE, description="degree m of the numerator P")
    den_degree: int = Field(4, ge=0, le=MAX_DEGREE, description="degree n of the denominator Q (0: a polynomial)")


class PiecewiseLinearParams(_RangeParams):
    """``pwl``: number of segments and the knots' range."""

    segments: int = Field(8, ge=1, le=MAX_SIZE, description="linear segments between lo and hi (segments + 1 knots)")


class MaxoutParams(FamilyParams):
    """``maxout``: number of affine pieces."""

    pieces: int = Field(3, ge=2, le=MAX_SIZE, description="affine pieces the maximum is taken over")


class KernelParams(_RangeParams):
    """``kernel``: dictionary size and range."""

    size: int = Field(20, ge=2, le=MAX_SIZE, description="dictionary points, equally spaced on [lo, hi]")


class NeuralParams(FamilyParams):
    """``neural``: hidden width of the scalar network."""

    hidden: int = Field(8, ge=1, le=MAX_SIZE, description="hidden width of the scalar network")


class SplineParams(_RangeParams):
    """``spline``: order, grid, range, initial function and base."""

    granularity: Granularity = Field(
        "unit", description="'unit' (KAN-style, default): one spline per unit; 'layer': one shared")
    order: int = Field(3, ge=1, le=MAX_DEGREE, description="B-spline order k (3: cubic)")
    grid_size: int = Field(5, ge=1, le=MAX_SIZE, description="grid intervals G on [lo, hi]; G + k coefficients per set")
    init: str = Field("silu", description="candidate the unit starts near (least squares on [lo, hi])")
    base: str = Field("silu", description="candidate carrying the base term w_b * base(x)")

    @field_validator("init", "base")
    @classmethod
    def _candidate(cls, v: str) -> str:
        return check_candidate(v)  # unknown names raise, listing the valid ones


BUILTIN_FAMILY_PARAMS: dict[str, type[FamilyParams]] = {
    "prelu": PReLUParams,
    "swish": SwishParams,
    "rational": RationalParams,
    "pwl": PiecewiseLinearParams,
    "maxout": MaxoutParams,
    "kernel": KernelParams,
    "neural": NeuralParams,
    "spline": SplineParams,
}
"""The built-in families' parameter classes by family name (the modules' ``family`` / ``Params``)."""

for _name, _params in BUILTIN_FAMILY_PARAMS.items():
    names.register_family(_name, _params)
