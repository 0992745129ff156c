"""The commented example study that ``learnact init`` writes (TOML or YAML, same study)."""

from __future__ import annotations

from pathlib import Path

from ..exceptions import ConfigError

__all__ = ["EXAMPLE_TOML", "EXAMPLE_YAML", "example_text"]

_EXAMPLE_TOML = """\
# A learnact study: shared settings, seeds, and variants (written by `learnact init`).
# Run it with:   learnact run --config {filename} --out my-study
# Rerunning the same command resumes: finished runs are skipped.

name = "my-study"          # used in the default output folder's name
reference = "baseline_tanh" # variant the others are compared with (optional)

# Seeds: a list such as [1, 7, 21, 42, 99], or a count from a base seed.
# Each seed gives every variant its own data split, initial weights and batch order.
seeds = {{ count = 5, base = 0 }}

[data]
dataset = "breast_cancer"  # a built-in name (`learnact list datasets`) or a path to a .csv file
# target = "label"         # label column of a CSV (default: the last column)
test_size = 0.25           # share held out for testing, in (0, 1)
val_size = 0.2             # share of the training part used for early stopping, in (0, 1)

[backbone]
hidden = [64, 32]          # hidden layer widths; an activation follows each

[train]                    # defaults for every variant; a variant may override any of them
lr = 1e-3
weight_decay = 1e-4
batch_size = 64
max_epochs = 300
patience = 35              # epochs without validation improvement before stopping (>= 1)
min_delta = 1e-6
entropy_weight = 0.0       # lambda: > 0 pushes gates toward one candidate, < 0 toward blending

# Variants. A list value sweeps that field: one variant per value (several lists give
# their full grid). `name` is a template filled with the swept values.

# Fixed activations: baseline_relu, baseline_tanh.
[[variants]]
name = "baseline_{{activation}}"
kind = "fixed"
activation = ["relu", "tanh"]  # `learnact list activations` shows every name

# A gate per layer over three candidates, at three temperatures:
# static_T0.5, static_T1, static_T2.
[[variants]]
name = "static_T{{temperature}}"
kind = "gated"
candidates = ["relu", "tanh", "sigmoid"]
gate = "layer"             # layer | neuron | input
temperature = [0.5, 1.0, 2.0]
patience = 30              # overrides [train] for this variant only

# Input-dependent gates fed by the network input, with an entropy sweep:
# input_lam0, input_lam0.01.
[[variants]]
name = "input_lam{{entropy_weight}}"
kind = "gated"
candidates = ["relu", "tanh", "sigmoid"]
gate = "input"
gate_source = "network"    # network | layer
gate_hidden = 16
temperature = 0.7
entropy_weight = [0.0, 0.01]
max_epochs = 450
patience = 50

# Learnable families (the paper's section 6): the activation has its own parameters, trained
# with the weights. Uncomment to add family_prelu, family_rational, spline_grid_size5 and
# spline_grid_size10-initrelu. A `params` table sets a family's hyper-parameters; every family
# takes granularity = "layer" (one parameter set per layer) or "unit" (one per neuron).
# The families and their parameters, with defaults:
{families}
# [[variants]]
# name = "family_{{kind}}"
# kind = ["prelu", "rational"]
# params = {{ granularity = "unit" }}   # one slope, one rational function per neuron
#
# [[variants]]
# name = "spline_{{params}}"
# kind = "spline"
# params = [{{ grid_size = 5 }}, {{ grid_size = 10, init = "relu" }}]   # a list of tables sweeps
"""

_EXAMPLE_YAML = """\
# A learnact study: shared settings, seeds, and variants (written by `learnact init`).
# Run it with:   learnact run --config {filename} --out my-study
# Rerunning the same command resumes: finished runs are skipped.

name: my-study             # used in the default output folder's name
reference: baseline_tanh   # variant the others are compared with (optional)

# Seeds: a list such as [1, 7, 21, 42, 99], or a count from a base seed.
# Each seed gives every variant its own data split, initial weights and batch order.
seeds: {{count: 5, base: 0}}

data:
  dataset: breast_cancer   # a built-in name (`learnact list datasets`) or a path to a .csv file
  # target: label          # label column of a CSV (default: the last column)
  test_size: 0.25          # share held out for testing, in (0, 1)
  val_size: 0.2            # share of the training part used for early stopping, in (0, 1)

backbone:
  hidden: [64, 32]         # hidden layer widths; an activation follows each

train:                     # defaults for every variant; a variant may override any of them
  lr: 1e-3
  weight_decay: 1e-4
  batch_size: 64
  max_epochs: 300
  patience: 35             # epochs without validation improvement before stopping (>= 1)
  min_delta: 1e-6
  entropy_weight: 0.0      # lambda: > 0 pushes gates toward one candidate, < 0 toward blending

# Variants. A list value sweeps that field: one variant per value (several lists give
# their full grid). `name` is a template filled with the swept values.
variants:
  # Fixed activations: baseline_relu, baseline_tanh.
  - name: "baseline_{{activation}}"
    kind: fixed
    activation: [relu, tanh]   # `learnact list activations` shows every name

  # A gate per layer over three candidates, at three temperatures:
  # static_T0.5, static_T1, static_T2.
  - name: "static_T{{temperature}}"
    kind: gated
    candidates: [relu, tanh, sigmoid]
    gate: layer              # layer | neuron | input
    temperature: [0.5, 1.0, 2.0]
    patience: 30             # overrides train for this variant only

  # Input-dependent gates fed by the network input, with an entropy sweep:
  # input_lam0, input_lam0.01.
  - name: "input_lam{{entropy_weight}}"
    kind: gated
    candidates: [relu, tanh, sigmoid]
    gate: input
    gate_source: network     # network | layer
    gate_hidden: 16
    temperature: 0.7
    entropy_weight: [0.0, 0.01]
    max_epochs: 450
    patience: 50

  # Learnable families (the paper's section 6): the activation has its own parameters, trained
  # with the weights. Uncomment to add family_prelu, family_rational, spline_grid_size5 and
  # spline_grid_size10-initrelu. A `params` table sets a family's hyper-parameters; every family
  # takes granularity: layer (one parameter set per layer) or unit (one per neuron).
  # The families and their parameters, with defaults:
{families_indented}
  # - name: "family_{{kind}}"
  #   kind: [prelu, rational]
  #   params: {{granularity: unit}}   # one slope, one rational function per neuron
  #
  # - name: "spline_{{params}}"
  #   kind: spline
  #   params: [{{grid_size: 5}}, {{grid_size: 10, init: relu}}]   # a list of tables sweeps
"""


def _family_lines(indent: str) -> str:
    """One comment line per registered family: its parameters and their defaults (from the registry)."""
    from ..model.activations.families import family_params_model, list_families

    lines = []
    for name in list_families():
        fields = family_params_model(name)().model_dump()
        lines.append(f"{indent}#   {name}: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                                       for k, v in fields.items()))
    # literal braces survive the later .format(filename=...)
    return "\n".join(lines).replace("{", "{{").replace("}", "}}")


EXAMPLE_TOML = _EXAMPLE_TOML.replace("{families}", _family_lines(""))
"""The TOML example study (a ``str.format`` template with ``{filename}``)."""
EXAMPLE_YAML = _EXAMPLE_YAML.replace("{families_indented}", _family_lines("  "))
"""The YAML example study, the same study as :data:`EXAMPLE_TOML`."""


def example_text(path: Path) -> str:
    """The example study for ``path``: YAML for ``.yaml``/``.yml``, TOML for ``.toml``.

    Raises:
        ConfigError: Any other suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".toml":
        template = EXAMPLE_TOML
    elif suffix in (".yaml", ".yml"):
        template = EXAMPLE_YAML
    else:
        raise ConfigError(f"cannot write a study file named {str(path)!r}: the name must end in .toml, .yaml "
                          f"or .yml")
    return template.format(filename=Path(path).name)
