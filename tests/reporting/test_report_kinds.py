"""Three kinds of variant everywhere: fixed, gated (by gate kind) and learnable family (by name).

The tiny study (conftest) holds a per-unit PReLU and the per-unit spline beside its gated mixtures; the
contract tests run over the registries themselves (families, candidates, gate kinds), not a hand list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.colors import rgb_to_hsv, to_rgba

from learnact import store
from learnact.cli.app import app
from learnact.cli.errors import run_cli
from learnact.config import ActivationConfig, RunConfig
from learnact.evaluation import gate_diagnostics
from learnact.experiment.artifacts import layer_record
from learnact.model import build_activation, list_candidates, list_families
from learnact.model.activations import GateKind, family_params_model
from learnact.reporting import load_study_view
from learnact.reporting.fig_gates import gate_evolution_figure, temperature_curve
from learnact.reporting.fig_shapes import activation_shapes_figure
from learnact.reporting.report import _families_paragraph
from learnact.reporting.study_view import RunView, StudyView
from learnact.reporting.style import candidate_color, group_label, variant_colors, variant_family
from learnact.training.schedules import TemperatureSchedule

GATE_KINDS = list(get_args(GateKind))
GATED = ["static_cold", "static_warm", "reg_none", "reg_strong", "per_unit", "input_gate",
         "annealed"]  # the tiny study's
FAMILIES = ["prelu_unit", "spline_fam"]


def _run(study: Path, variant: str, seed: int = 1) -> Path:
    return next(p for p in (study / "runs").iterdir() if p.name.startswith(f"{variant}__s{seed}__"))


def _configs_view(configs: dict[str, ActivationConfig]) -> StudyView:
    """A study view of configs alone (no run folder): enough for colours, kinds and the protocol text."""
    runs = {v: [RunView(Path("."), RunConfig(variant=v, seed=1, activation=a), {})] for v, a in configs.items()}
    return StudyView(Path("."), "configs", [1], None, list(configs), runs, {})


# ---------------------------------------------------------------- over the registries


def _every_kind() -> dict[str, ActivationConfig]:
    configs = {"fixed_relu": ActivationConfig(kind="fixed", activation="relu")}
    configs |= {f"gate_{g}": ActivationConfig(kind="gated", gate=g) for g in GATE_KINDS}
    configs |= {f"fam_{f}": ActivationConfig(kind=f) for f in list_families()}
    return configs


def test_every_family_and_gate_kind_gets_its_own_hue_and_label():
    view = _configs_view(_every_kind())
    assert view.fixed == ["fixed_relu"]
    assert view.gated == [f"gate_{g}" for g in GATE_KINDS]
    assert view.families == [f"fam_{f}" for f in list_families()]
    groups = {v: variant_family(view.config(v)) for v in view.variants}
    assert [groups[f"fam_{f}"] for f in list_families()] == list_families()
    colors = variant_colors(view)
    assert len({colors[v] for v in view.variants}) == len(view.variants)  # one hue per group here
    for f in list_families():
        assert group_label(f) == f"Learnable family: {f}"
    assert {group_label(g) for g in GATE_KINDS}.isdisjoint({group_label(f) for f in list_families()})


def test_members_of_one_family_get_shades_of_its_hue():
    view = _configs_view({"a": ActivationConfig(kind="prelu"), "b": ActivationConfig(kind="prelu", params={
        "granularity": "unit"}), "c": ActivationConfig(kind="gated")})
    colors = variant_colors(view)
    a, b, c = (rgb_to_hsv(np.array(colors[v][:3])) for v in "abc")
    assert not np.allclose(a, b)
    assert abs(a[0] - b[0]) < 0.02 and abs(a[0] - c[0]) > 0.1  # same hue, another shade; a gate's hue is apart


@pytest.mark.parametrize("name", list_candidates())
def test_every_candidate_has_a_colour(name):
    assert len(to_rgba(candidate_color(name))) == 4


def test_built_in_candidates_have_distinct_colours():
    assert len({candidate_color(n) for n in list_candidates()}) == len(list_candidates())


@pytest.mark.parametrize("family", list_families())
def test_protocol_text_names_each_family_with_its_granularity(family):
    view = _configs_view({"mine": ActivationConfig(kind=family)})
    text = _families_paragraph(view)
    granularity = family_params_model(family)().granularity
    assert f"mine: {family} (one parameter set per {granularity}" in text
    assert "candidates" not in text and "gate" not in text.replace("no gate", "")


@pytest.mark.parametrize("granularity", ["layer", "unit"])
@pytest.mark.parametrize("family", list_families())
def test_gates_json_record_of_a_family_rebuilds_its_function(family, granularity):
    width = 5
    act = ActivationConfig(kind=family, params={"granularity": granularity})
    module = build_activation(act, width, width)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    record = json.loads(json.dumps(layer_record(2, module, None)))
    assert record["layer"] == 2 and record["kind"] == "family" and record["gate"] is None
    assert record["family"] == family and record["granularity"] == granularity
    assert record["params"] == module.hparams.model_dump(mode="json")
    assert record["n_parameters"] == sum(p.numel() for p in module.parameters())
    # the learned values alone, loaded into a fresh module, give back the same function
    fresh = build_activation(ActivationConfig(kind=family, params=record["params"]), width, width)
    with torch.no_grad():
        for name, p in fresh.named_parameters():
            p.copy_(torch.tensor(record["parameters"][name]))
    x = torch.linspace(-4, 4, 33)
    torch.testing.assert_close(fresh.curves(x), module.curves(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gate", GATE_KINDS)
def test_gates_json_record_of_a_gate_names_its_kind(gate):
    module = build_activation(ActivationConfig(kind="gated", gate=gate), 4, 3)
    _, weights = module.forward_with_weights(torch.randn(6, 4), torch.randn(6, 3))
    record = layer_record(1, module, weights)
    assert record["kind"] == "gated" and record["gate"] == gate and record["candidates"] == ["relu", "tanh", "sigmoid"]
    assert (record["weights"] is None) is (gate == "input")


# ---------------------------------------------------------------- the tiny study


def test_family_runs_record_their_family_in_gates_json(tiny_study):
    folder = _run(tiny_study, "prelu_unit")
    records = store.read_gates(folder)
    state = store.load_state(folder)
    assert [r["kind"] for r in records] == ["family", "family"]
    for i, (r, width) in enumerate(zip(records, (8, 4), strict=True)):
        assert r["family"] == "prelu" and r["granularity"] == "unit" and r["params"]["init_slope"] == 0.25
        np.testing.assert_allclose(r["parameters"]["slope"], state[f"blocks.{i}.activation.slope"].numpy(),
                                   rtol=1e-6)
        assert len(r["parameters"]["slope"]) == width
    fixed = store.read_gates(_run(tiny_study, "fixed_tanh"))
    assert [(r["kind"], r["gate"], r["activation"]) for r in fixed] == [("fixed", "fixed", "tanh")] * 2


def test_gate_diagnostics_skip_family_layers(tiny_study):
    assert gate_diagnostics(_run(tiny_study, "spline_fam")) == []
    assert len(gate_diagnostics(_run(tiny_study, "static_cold"))) == 2


def test_study_view_tells_the_three_kinds_apart(tiny_study):
    view = load_study_view(tiny_study)
    assert view.fixed == ["fixed_tanh"] and sorted(view.gated) == sorted(GATED)
    assert view.families == FAMILIES and sorted(view.learnable) == sorted(GATED + FAMILIES)
    assert view.variants == view.fixed + view.gated + view.families
    assert all(view.gated_layers(v) == [] for v in FAMILIES)


def test_report_names_families_apart_from_gated_mixtures(tiny_report):
    index = (tiny_report / "index.md").read_text()
    protocol = index[:index.index("## Contents")]
    gated = next(p for p in protocol.split("\n\n") if p.startswith("Gated mixtures mix the candidates"))
    assert not any(f in gated for f in FAMILIES)
    families = next(p for p in protocol.split("\n\n") if p.startswith("Learnable families"))
    assert "prelu_unit: prelu (one parameter set per unit)" in families
    assert "spline_fam: spline (one parameter set per unit)" in families
    assert "7 gated mixtures, 2 learnable families" in protocol
    assert ("The gate temperature follows a schedule over the epochs (learnact list schedules) in annealed: "
            "exponential, from T = 2 at epoch 1 to T = 0.5 at epoch 4.") in gated
    board = pd.read_csv(tiny_report / "tables" / "leaderboard.csv").set_index("variant")
    assert board.loc[FAMILIES, "group"].tolist() == ["family", "family"]
    assert board.loc["fixed_tanh", "group"] == "fixed" and set(board.loc[GATED, "group"]) == {"gated"}
    diag = pd.read_csv(tiny_report / "tables" / "gate_diagnostics.csv")
    assert set(diag["variant"]) == set(GATED)


def test_family_shapes_are_the_saved_parameters_functions(tiny_study):
    view = load_study_view(tiny_study)
    fig, detail = activation_shapes_figure(view)
    assert "Learnable families" in detail
    x = np.linspace(-4.0, 4.0, 241)
    color = to_rgba(variant_colors(view)["prelu_unit"])
    for layer in (1, 2):
        ax = next(a for a in fig.axes if a.get_title() == f"prelu_unit\nprelu (per unit), layer {layer}")
        drawn = [segment[:, 1] for lines in ax.collections if isinstance(lines, LineCollection)
                 for segment, rgba in zip(lines.get_segments(), lines.get_colors(), strict=True)
                 if tuple(rgba[:3]) == color[:3]]  # the seeds' lines, drawn as one collection
        assert len(drawn) == 2  # one line per seed
        for run, y in zip(view.runs["prelu_unit"], drawn, strict=True):
            slope = np.array(store.read_gates(run.folder)[layer - 1]["parameters"]["slope"])
            expected = np.median(np.maximum(x, 0)[:, None] + slope * np.minimum(x, 0)[:, None], axis=1)
            np.testing.assert_allclose(y, expected, atol=1e-5)
        assert any(not isinstance(c, LineCollection) for c in ax.collections), "per-unit family without its band"
    spline_titles = [a.get_title() for a in fig.axes if a.get_title().startswith("spline_fam")]
    assert spline_titles == ["spline_fam\nspline (per unit), layer 1", "spline_fam\nspline (per unit), layer 2"]


def test_study_with_families_and_no_gated_variant_builds_its_report(families_no_gates_study, capsys):
    assert run_cli(app, ["report", str(families_no_gates_study)]) == 0
    report = families_no_gates_study / "report"
    assert (report / "figures" / "activation_shapes.png").stat().st_size > 1000
    assert (report / "figures" / "cost.png").is_file()
    index = (report / "index.md").read_text()
    assert "**Gate entropy and selectivity**: the study has no gated variant" in index
    assert "Gated mixtures mix" not in index and "Learnable families replace" in index  # families are no gates
    diagnostics = report / "tables" / "gate_diagnostics.csv"  # every report part is built; this one is empty
    assert not diagnostics.exists() or len(diagnostics.read_text().strip().splitlines()) <= 1


def test_temperature_curve_reads_per_layer_and_shared_values():
    per_layer = [{"temperature": [2.0, None]}, {"temperature": [1.0, None]}]
    np.testing.assert_array_equal(temperature_curve(per_layer, 1), [2.0, 1.0])
    assert temperature_curve(per_layer, 2) is None
    np.testing.assert_array_equal(temperature_curve([{"temperature": 0.5}, {"temperature": 0.25}], 2), [0.5, 0.25])
    assert temperature_curve([{"val_loss": 0.3}], 1) is None


def test_scheduled_temperature_is_drawn_over_the_gate_weights(tiny_study):
    # "annealed" anneals T exponentially from 2 to 0.5 over max_epochs = 4; no other variant has a schedule.
    view = load_study_view(tiny_study)
    fig, detail = gate_evolution_figure(view)
    twins = [a for a in fig.axes if a.get_ylabel() == "T"]
    assert len(twins) == 2 and "scheduled gate temperature" in detail  # one per hidden layer
    longest = max(len(r.history()) for r in view.runs["annealed"])
    expected = [TemperatureSchedule("exponential", 2.0, 0.5, 4).at(e) for e in range(1, longest + 1)]
    for twin in twins:
        np.testing.assert_allclose(twin.get_lines()[0].get_ydata(), expected, rtol=1e-6)
    for v in GATED:  # the records of the other variants keep their constant temperature
        if v != "annealed":
            curve = temperature_curve(view.runs[v][0].history(), 1)
            assert curve is None or np.ptp(curve) == 0, v


@pytest.mark.parametrize("name", ["activation_shapes", "gate_evolution"])
def test_panel_grids_keep_few_tick_labels(tiny_study, name):
    # The two grids of one small panel per (variant, layer) are the report's slowest figures; their tick labels
    # were most of the drawing time, so each panel keeps at most three intervals between labels per axis.
    from learnact.reporting import FIGURES, load_study_view
    from learnact.reporting.style import figure_style

    view = load_study_view(tiny_study)
    spec = next(s for s in FIGURES if s.name == name)
    with figure_style():
        fig, _ = spec.build(view)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison and ax.xaxis.get_visible()]  # not twins
    assert len(panels) >= 10  # every gated variant and family, each hidden layer
    for ax in panels:
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            shown = [t for t in axis.get_major_locator()() if min(lo, hi) - 1e-9 <= t <= max(lo, hi) + 1e-9]
            assert 2 <= len(shown) <= 4, (ax.get_title(), shown)


def test_a_gate_over_one_candidate_draws_its_figures_without_warnings(tmp_path):
    # its entropy is always 0: the entropy axis got the limits (0, 0) and matplotlib warned to the user
    import warnings

    from learnact.experiment import run_study, study_from_dict
    from learnact.reporting import build_report

    study = study_from_dict({"name": "one", "seeds": [1, 2], "backbone": {"hidden": [4]}, "train": {"max_epochs": 2},
                             "variants": [{"name": "solo", "kind": "gated", "candidates": ["relu"]},
                                          {"name": "fx", "kind": "fixed", "activation": "tanh"}]})
    run_study(study, tmp_path / "s")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = build_report(tmp_path / "s", workers=1)
    assert (report / "figures" / "gate_selectivity.png").is_file()
