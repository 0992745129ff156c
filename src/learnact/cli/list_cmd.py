"""``learnact list``: what a study can use, read from the registries.

Candidates, gate kinds, gate temperature schedules, learnable families with
their hyper-parameters (name, default, description from each family's params
class), presets and data sets.
Nothing here is a hand-kept list: registering a candidate or a family shows it.
"""

from __future__ import annotations

import typer

from .app import app

__all__ = ["list_cmd", "SECTIONS", "section_lines"]

SECTIONS = ("candidates", "gates", "schedules", "families", "presets", "datasets")
"""What ``learnact list WHAT`` can show (``all``: every section; ``activations``: candidates and families)."""

_ALIASES = {"all": SECTIONS, "activations": ("candidates", "families"), "gate": ("gates",),
            "family": ("families",), "candidate": ("candidates",), "preset": ("presets",), "schedule": ("schedules",),
            "dataset": ("datasets",)}

# What each gate kind learns (the kinds themselves come from GateKind).
_GATE_TEXT = {
    "layer": "one logit vector per layer, shared by its units and samples",
    "neuron": "one logit vector per unit",
    "input": "logits from a small gating head on the network's input (gate_source = \"network\") or the "
             "layer's own input (\"layer\"); gate_hidden sets its width",
}


def _value(v: object) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def section_lines(section: str) -> list[str]:
    """The lines ``learnact list`` prints for one of :data:`SECTIONS`."""
    if section == "candidates":
        from ..names import list_candidates

        return ['candidates (kind = "fixed", activation = NAME; kind = "gated", candidates = [NAME, ...]):',
                "  " + ", ".join(list_candidates())]
    if section == "gates":
        from ..names import GATE_KINDS

        kinds = list(GATE_KINDS)
        width = max(map(len, kinds))
        return ['gate kinds (kind = "gated", gate = KIND):'] + [
            f"  {k:<{width}}  {_GATE_TEXT.get(k, '')}".rstrip() for k in kinds]
    if section == "schedules":
        from ..config import SCHEDULE_FORMULAS, TEMPERATURE_SCHEDULES

        width = max(map(len, TEMPERATURE_SCHEDULES))
        return ['gate temperature schedules (kind = "gated", temperature = T0, temperature_schedule = KIND, '
                "temperature_end = T1; p = (epoch - 1) / (max_epochs - 1)):"] + [
            f"  {k:<{width}}  T = {SCHEDULE_FORMULAS[k]}" for k in TEMPERATURE_SCHEDULES]
    if section == "families":
        from ..names import family_params_model, list_families

        lines = ["learnable families (kind = NAME, params = { FIELD = VALUE, ... }):"]
        for name in list_families():
            spec = family_params_model(name)
            summary = (spec.__doc__ or "").strip().splitlines()[0] if (spec.__doc__ or "").strip() else ""
            summary = summary.removeprefix(f"``{name}``:").replace("``", "").strip()
            lines.append(f"  {name}" + (f": {summary}" if summary else ""))
            fields = [(k, _value(f.default), f.description or "") for k, f in spec.model_fields.items()]
            w_name = max(len(k) for k, _, _ in fields)
            w_val = max(len(v) for _, v, _ in fields)
            lines += [f"    {k:<{w_name}} = {v:<{w_val}}  {d}".rstrip() for k, v, d in fields]
        return lines
    if section == "presets":
        from ..names import list_presets

        return ["presets (learnact run --preset NAME):", "  " + ", ".join(list_presets())]
    if section == "datasets":
        from ..data.sources import DATASETS

        width = max(map(len, DATASETS))
        lines = ["data sets (data.dataset = NAME, or the path of a .csv or .parquet file with data.target = COLUMN):",
                 f"  {'name':<{width}}  {'rows':>5}  {'features':>8}  {'classes':>7}  {'task':<14}  source"]
        for name, data in DATASETS.items():
            classes = data.classes if data.task == "classification" else "-"  # a regression set has none
            lines.append(f"  {name:<{width}}  {data.rows:>5}  {data.features:>8}  {classes:>7}  "
                         f"{data.task:<14}  {data.source}")
        return lines
    raise ValueError(f"unknown section {section!r}")


@app.command("list")
def list_cmd(what: str = typer.Argument(
        "all", help="all | candidates | gates | schedules | families | presets | datasets | activations"),
        plugin: list[str] | None = typer.Option(
            None, "--plugin", help="Import this module first (as `learnact run --plugin` does), so the candidates "
                                   "and families it registers are listed too; repeat for several.")) -> None:
    """List candidates, gate kinds, temperature schedules, learnable families with their parameters, presets and
    data sets."""
    sections = _ALIASES.get(what, (what,) if what in SECTIONS else None)
    if sections is None:
        valid = ", ".join(["all", *SECTIONS, "activations"])
        raise ValueError(f"unknown list {what!r}; use one of: {valid}")
    if plugin:  # a plugin's registrations appear only once it is imported (it imports torch itself, most likely)
        from ..plugins import import_plugins

        try:
            import_plugins(plugin)
        except ValueError as exc:
            raise ValueError(f"--plugin: {exc}") from None
    blocks = ["\n".join(section_lines(s)) for s in sections]
    print("\n\n".join(blocks))
