"""Study files: TOML/YAML/JSON, grid expansion and names, presets, load-time validation (issue 4)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from learnact.exceptions import ConfigError
from learnact.experiment.example import EXAMPLE_TOML, EXAMPLE_YAML, example_text
from learnact.experiment.grid import (
    expand_variant,
    list_presets,
    load_study,
    study_from_dict,
    study_to_dict,
)

GOOD_TOML = """
name = "grid"
seeds = {count = 2, base = 5}
[backbone]
hidden = [8]
[train]
max_epochs = 4
[[variants]]
name = "T{temperature}_lam{entropy_weight}"
temperature = [0.5, 1.0]
entropy_weight = [0.0, 0.01]
[[variants]]
kind = "fixed"
activation = ["relu", "tanh"]
[[variants]]
name = "c_{candidates}"
candidates = [["relu", "tanh"], ["silu", "sigmoid"]]
"""

GOOD_YAML = """
name: grid
seeds: {count: 2, base: 5}
backbone: {hidden: [8]}
train: {max_epochs: 4}
variants:
  - name: "T{temperature}_lam{entropy_weight}"
    temperature: [0.5, 1.0]
    entropy_weight: [0.0, 0.01]
  - kind: fixed
    activation: [relu, tanh]
  - name: "c_{candidates}"
    candidates: [[relu, tanh], [silu, sigmoid]]
"""


def _write(tmp_path, text, name="study.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_grid_expansion_names_and_seeds(tmp_path):
    study = load_study(_write(tmp_path, GOOD_TOML))
    assert [v.name for v in study.variants] == [
        "T0.5_lam0", "T0.5_lam0.01", "T1_lam0", "T1_lam0.01",
        "fixed_relu", "fixed_tanh",
        "c_relu-tanh", "c_silu-sigmoid",
    ]
    assert study.seeds == (5, 6)
    assert len(study.runs()) == 16
    by_name = {v.name: v for v in study.variants}
    assert by_name["T1_lam0.01"].activation.temperature == 1.0
    assert by_name["T1_lam0.01"].train.entropy_weight == 0.01
    assert by_name["c_silu-sigmoid"].activation.candidates == ("silu", "sigmoid")
    assert by_name["fixed_tanh"].activation.activation == "tanh"


def test_yaml_and_toml_give_the_same_study(tmp_path):
    a = load_study(_write(tmp_path, GOOD_TOML))
    b = load_study(_write(tmp_path, GOOD_YAML, "study.yaml"))
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]


def test_yaml_reads_exponent_floats(tmp_path):
    path = _write(tmp_path, "variants: [{name: a}]\ntrain: {lr: 1e-3, weight_decay: 5E-4}\n", "s.yml")
    study = load_study(path)
    assert study.train.lr == pytest.approx(1e-3) and study.train.weight_decay == pytest.approx(5e-4)


def test_resolved_study_round_trips_through_json(tmp_path):
    study = load_study(_write(tmp_path, GOOD_TOML))
    path = tmp_path / "study.json"
    path.write_text(json.dumps(study_to_dict(study)))
    again = load_study(path)
    assert [r.run_id for r in again.runs()] == [r.run_id for r in study.runs()]
    assert all("temperature" not in v or not isinstance(v["temperature"], list)
               for v in study_to_dict(study)["variants"])  # resolved: no sweeps left


def test_a_study_folder_loads_its_study_json(tmp_path):
    study = load_study(_write(tmp_path, GOOD_TOML))
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps(study_to_dict(study)))
    assert [r.run_id for r in load_study(folder).runs()] == [r.run_id for r in study.runs()]


def test_presets_are_files_and_load():
    assert {"paper", "headline"} <= set(list_presets())
    paper = load_study("paper")
    assert len(paper.runs()) == 75 and paper.reference == "baseline_tanh"
    assert len(load_study("headline").runs()) == 15


@pytest.mark.parametrize("path", ["study.toml", "study.yaml", "study.yml"])
def test_the_init_example_loads_cleanly(tmp_path, path):
    text = example_text(tmp_path / path)
    assert text.count("#") > 20  # commented
    target = tmp_path / path
    target.write_text(text)
    study = load_study(target)
    assert study.reference == "baseline_tanh" and len(study.variants) == 7 and study.seeds == (0, 1, 2, 3, 4)


def test_toml_and_yaml_examples_are_the_same_study(tmp_path):
    (tmp_path / "a.toml").write_text(EXAMPLE_TOML.format(filename="a.toml"))
    (tmp_path / "a.yaml").write_text(EXAMPLE_YAML.format(filename="a.yaml"))
    a, b = load_study(tmp_path / "a.toml"), load_study(tmp_path / "a.yaml")
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]


def test_example_text_rejects_other_suffixes(tmp_path):
    with pytest.raises(ConfigError, match="must end in .toml, .yaml or .yml"):
        example_text(tmp_path / "study.txt")


def test_generated_names():
    out = expand_variant({"temperature": [0.5, 1.0], "entropy_weight": [0.01], "patience": [20]})
    assert [v["name"] for v in out] == ["gated_T0.5_lam0.01_patience20", "gated_T1_lam0.01_patience20"]
    assert [v["name"] for v in expand_variant({"kind": "gated", "candidates": [["relu", "tanh"], ["silu"]]})] == [
        "gated_relu-tanh", "gated_silu"]


def test_expand_variant_direct():
    out = expand_variant({"name": "x{temperature}", "temperature": [1.0, 2.0], "patience": 3})
    assert [(v["name"], v["temperature"], v["patience"]) for v in out] == [("x1", 1.0, 3), ("x2", 2.0, 3)]
    with pytest.raises(ConfigError, match=r"variants\[0\].name: template 'x' gives repeated names; include every "
                                          r"swept field \(\{temperature\}\)"):
        expand_variant({"name": "x", "temperature": [1.0, 2.0]})
    with pytest.raises(ConfigError, match=r"template 'x\{tmp\}' cannot be filled"):
        expand_variant({"name": "x{tmp}", "temperature": [1.0, 2.0]})


def _error(raw) -> str:
    with pytest.raises(ConfigError) as info:
        study_from_dict(raw)
    return str(info.value)


GOOD = {"seeds": [1], "variants": [{"name": "v", "temperature": 1.0}]}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"seed": [1]}, "seed: unknown key (did you mean 'seeds'?)"),
        ({"data": {"tset_size": 0.3}}, "data.tset_size: unknown key (did you mean 'test_size'?)"),
        ({"backbone": {"hiden": [8]}}, "backbone.hiden: unknown key (did you mean 'hidden'?)"),
        ({"train": {"patiense": 3}}, "train.patiense: unknown key (did you mean 'patience'?)"),
        ({"variants": [{"name": "v", "temprature": 1.0}]}, "variants[0].temprature: unknown key (did you mean "
                                                            "'temperature'?)"),
        ({"train": {"max_epochs": "many"}}, "train.max_epochs: expected an integer, got 'many' (str)"),
        ({"train": {"lr": True}}, "train.lr: expected a number, got True (bool)"),
        ({"variants": [{"name": "v", "temperature": 0}]}, "variants[0].temperature: must be > 0, got 0"),
        ({"variants": [{"name": "v{temperature}", "temperature": [0.5, -1.0]}]},
         "variants[0].temperature[1]: must be > 0, got -1.0"),
        ({"train": {"patience": 0}}, "train.patience: must be >= 1, got 0"),
        ({"variants": [{"name": "v", "patience": 0}]}, "variants[0].patience: must be >= 1, got 0"),
        ({"data": {"test_size": 1.0}}, "data.test_size: must be in (0, 1), got 1.0"),
        ({"data": {"test_size": 0}}, "data.test_size: must be in (0, 1), got 0"),
        ({"backbone": {"hidden": [8, 0]}}, "backbone.hidden: every width must be >= 1, got [8, 0]"),
        ({"variants": [{"name": "v", "candidates": []}]}, "variants[0].candidates: must name at least one activation"),
        ({"variants": [{"name": "v", "temperature": []}]}, "variants[0].temperature: a sweep needs at least one value"),
        ({"variants": [{"name": "v", "candidates": ["relu", "tahn"]}]},
         "variants[0].candidates[1]: unknown activation 'tahn' (did you mean 'tanh'?); valid: "),
        ({"variants": [{"name": "v{candidates}", "candidates": [["relu"], ["sigmoid", "tahn"]]}]},
         "variants[0].candidates[1][1]: unknown activation 'tahn'"),
        ({"variants": [{"name": "a"}, {"name": "b", "candidates": ["tahn", "relu", "sigmod"]}]},
         "variants[1].candidates[0]: unknown activation 'tahn' (did you mean 'tanh'?); valid: "),
        ({"variants": [{"name": "a"}, {"name": "b", "candidates": ["tahn", "relu", "sigmod"]}]},
         "variants[1].candidates[2]: unknown activation 'sigmod' (did you mean 'sigmoid'?); valid: "),
        ({"variants": [{"name": "v", "kind": "fixed", "activation": "rleu"}]},
         "variants[0].activation: unknown activation 'rleu' (did you mean 'relu'?)"),
        ({"data": {"dataset": "data.txt"}}, "data.dataset: unknown dataset 'data.txt'; use one of breast_cancer, circles,"),
        ({"data": {"dataset": "no/such/file.csv"}}, "data.dataset: CSV file 'no/such/file.csv' does not exist"),
        ({"seeds": {"count": 0}}, "seeds: as a table must be {count = N, base = B}"),
        ({"seeds": [1, 1]}, "seeds: must not repeat, got [1, 1]"),
        ({"seeds": "1"}, "seeds: expected a list of seeds ([1, 7, 21]) or a table {count = N, base = B} "
                         "(N seeds B, B+1, ...), got '1' (str)"),
        ({"seeds": 3}, "seeds: expected a list of seeds ([1, 7, 21]) or a table {count = N, base = B} "
                       "(N seeds B, B+1, ...), got 3 (int)"),
        ({"reference": "vv"}, "reference: no variant is named 'vv'; variants: v; the closest is 'v': correct whichever "
                              "of the two names is misspelled"),
        ({"reference": "zz"}, "reference: no variant is named 'zz'; variants: v; set reference to one of them"),
        ({"variants": [{"name": "a"}, {"name": "a"}]}, "variants: variant names must be unique, repeated: ['a']"),
        ({"variants": []}, "variants: a study needs at least one variant, got []"),
        ({"variants": {"name": "a"}}, "variants: expected a list of tables"),
        ({"variants": [{"name": "v", "kind": "gatd"}]},
         "variants[0].kind: must be one of fixed, gated, kernel, maxout, neural, prelu, pwl, rational, spline, swish, got 'gatd' (did you mean 'gated'?)"),
    ],
)
def test_each_bad_input_gives_its_message(change, expected):
    assert expected in _error({**GOOD, **change})


def test_missing_variants_and_non_table_top_level():
    assert "variants: a study needs at least one variant" in _error({"seeds": [1]})
    assert "expected a table of settings at the top level, got list" in _error([1, 2])


def test_all_problems_are_reported_at_once_in_file_order():
    raw = {
        "sed": 1,
        "data": {"test_size": 1.5, "dataset": "irsi"},
        "backbone": {"hidden": [0]},
        "train": {"patience": 0, "max_epoch": 3},
        "variants": [
            {"name": "b_{activation}", "kind": "fixed", "activation": ["relu", "tahn"]},
            {"name": "s{temperature}", "temperature": [0.5, 0.0], "candidates": [], "patiense": 2},
        ],
        "reference": "nope",
    }
    text = _error(raw)
    expected = [
        "reference: no variant is named 'nope'; variants as the file names them now: b_relu, b_tahn,",
        "data.dataset: unknown dataset 'irsi'",
        "data.test_size: must be in (0, 1), got 1.5",
        "backbone.hidden: every width must be >= 1, got [0]",
        "train.patience: must be >= 1, got 0",
        "train.max_epoch: unknown key (did you mean 'max_epochs'?)",
        "variants[1].patiense: unknown key (did you mean 'patience'?)",
        "variants[0].activation[1]: unknown activation 'tahn'",
        "variants[1].candidates: must name at least one activation",
        "variants[1].temperature[1]: must be > 0, got 0.0",
        "sed: unknown key (did you mean 'seed",
    ]
    assert text.startswith(f"invalid config, {len(expected)} problems: (1) ")
    positions = [text.index(part) for part in expected]
    assert positions == sorted(positions)
    # a problem in a field shared by a sweep's variants is reported once
    assert _error({"seeds": [1], "variants": [{"name": "v{temperature}", "temperature": [1.0, 2.0],
                                               "patience": 0}]}).count("patience") == 1


def test_a_reference_that_names_no_variant_suggests_no_misspelled_name():
    base = {"seeds": [1], "reference": "baseline_tanh"}
    # the variant's name is the misspelled one: the message must not tell the user to copy it into the reference
    text = _error({**base, "variants": [{"name": "baseline_{activation}", "kind": "fixed",
                                         "activation": ["relu", "tanhh"]}]})
    assert "did you mean 'baseline_tanhh'" not in text
    assert ("reference: no variant is named 'baseline_tanh'; variants as the file names them now: baseline_relu, "
            "baseline_tanhh; fix the variants' problems first") in text
    text = _error({**base, "variants": [{"name": "baseline_tanhh", "kind": "fixed", "activation": "tanh"}]})
    assert text == ("invalid config: reference: no variant is named 'baseline_tanh'; variants: baseline_tanhh; the "
                    "closest is 'baseline_tanhh': correct whichever of the two names is misspelled")


def test_load_errors_for_files(tmp_path):
    with pytest.raises(ConfigError, match="neither a file nor a preset \\(did you mean 'paper'\\?\\); presets: "):
        load_study("pape")
    with pytest.raises(ConfigError, match="unknown file type '.txt'"):
        load_study(_write(tmp_path, "x", "s.txt"))
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_study(_write(tmp_path, "name = ", "s.toml"))
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_study(_write(tmp_path, "a: [1,", "s.yaml"))


def test_a_key_given_twice_is_refused_in_yaml_and_json_at_any_depth(tmp_path):
    yaml_head = "name: d\nseeds: [1]\nvariants:\n  - name: v\n    kind: fixed\n"
    cases = [
        ("s.yaml", yaml_head + "train: {max_epochs: 3}\ntrain: {patience: 2}\n", "'train' is given twice (lines 6 and 7)"),
        ("s.yaml", yaml_head + "    patience: 1\n    patience: 2\n",
         "'variants[0].patience' is given twice (lines 6 and 7)"),
        ("s.yaml", yaml_head + "train:\n  max_epochs: 3\n  max_epochs: 4\n", "'train.max_epochs' is given twice"),
        ("s.yaml", yaml_head + "1: a\n01: b\n", "'1' is given twice"),  # keys compare as the values they load as
        ("s.json", '{"name": "x", "seeds": [1], "name": "y"}', "'name' is given twice, and only the later"),
        ("s.json", '{"name": "x", "seeds": [1], "variants": [{"name": "v"}, {"name": "w", "kind": "fixed", '
                   '"kind": "gated"}]}', "'variants[1].kind' is given twice"),
        ("s.json", '{"name": "x", "seeds": [1], "train": {"patience": 1, "patience": 1}}', "'train.patience' is given"),
    ]
    for name, text, expected in cases:
        with pytest.raises(ConfigError, match="merge the two into one") as info:
            load_study(_write(tmp_path, text, name))
        assert expected in str(info.value), (text, str(info.value))
    # YAML's merge key may be overridden: that is the point of it, not a key given twice
    study = load_study(_write(tmp_path, "name: d\nseeds: [1]\nvariants:\n  - &v {name: v, kind: fixed, patience: 1}\n"
                                         "  - {<<: *v, name: w}\n", "m.yaml"))
    assert [(v.name, v.train.patience) for v in study.variants] == [("v", 1), ("w", 1)]


@pytest.mark.parametrize(("variant", "expected"), [
    ({"name": "v", "kind": "fixed", "activation": "tanh", "temperature": 0.5},
     "variants[0].temperature: a fixed variant does not use temperature (only gated variants do)"),
    ({"name": "v", "kind": "fixed", "candidates": ["relu", "tanh"]},
     "variants[0].candidates: a fixed variant does not use candidates"),
    ({"name": "v", "kind": "prelu", "temperature_schedule": "linear", "temperature_end": 0.5},
     "variants[0].temperature_schedule: a prelu variant does not use temperature_schedule"),
    ({"name": "{kind}_T{temperature}", "kind": ["fixed", "gated"], "temperature": [0.5, 2.0]},
     "variants[0].temperature: a fixed variant (the sweep over kind gives it one) does not use temperature"),
])
def test_a_field_the_variants_kind_does_not_use_is_refused(variant, expected):
    # accepted before, and ignored: a fixed variant's temperature changed nothing, not even its run id
    with pytest.raises(ConfigError) as caught:
        study_from_dict({"name": "s", "seeds": [1], "variants": [variant]})
    assert expected in str(caught.value)


def test_a_swept_kind_takes_each_kinds_fields():
    study = study_from_dict({"name": "s", "seeds": [1], "variants": [
        {"name": "{kind}", "kind": ["fixed", "prelu"]},
        {"name": "g", "kind": "gated", "temperature": 0.5, "candidates": ["relu", "tanh"]}]})
    assert [v.name for v in study.variants] == ["fixed", "prelu", "g"]


def test_a_yaml_anchor_of_a_fixed_variant_merges_into_a_gated_one(tmp_path):
    # a merge key cannot drop the anchor's activation, and nowhere else can hold an anchor
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent("""
        name: s
        seeds: [1]
        variants:
          - &base {name: fixed_relu, kind: fixed, activation: relu, lr: 0.01}
          - <<: *base
            name: gated
            kind: gated
    """))
    study = load_study(path)
    assert [(v.name, v.activation.kind) for v in study.variants] == [("fixed_relu", "fixed"), ("gated", "gated")]


def test_a_preset_name_loads_the_preset_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    """`load_study("paper")` is the shipped preset; `Path("paper")` (or "./paper") is the folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paper").mkdir()
    assert load_study("paper").name == "paper" and len(load_study("paper").runs()) == 75
    with pytest.raises(ConfigError, match="is a folder without study.json"):
        load_study(Path("paper"))
    with pytest.raises(ConfigError, match="is a folder without study.json"):
        load_study("./paper")


@pytest.mark.parametrize("name, name_problem", [
    ("g", "variants[0].name: template 'g' gives repeated names; include every swept field ({temperature}) in it"),
    ("g{tmp}", "variants[0].name: template 'g{tmp}' cannot be filled (KeyError('tmp'))"),
    (3, "variants[0].name: expected a string, got 3 (int)"),
])
def test_a_bad_name_template_hides_none_of_the_variants_other_problems(name, name_problem):
    """Every problem at once: the variant's fields are checked beside its name template's problem (they had
    appeared only once the name was fixed)."""
    text = _error({"seeds": [1], "train": {"patiense": 3, "batch_size": 0}, "variants": [
        {"name": name, "kind": "gated", "temperature": [0.5, 0], "temperature_schedule": "cosine",
         "gate": "neurons"}]})
    problems = [
        "train.batch_size: must be >= 1, got 0",
        "train.patiense: unknown key (did you mean 'patience'?)",
        name_problem,
        "variants[0].gate: must be one of 'layer', 'neuron', 'input', got 'neurons' (did you mean 'neuron'?)",
        "variants[0].temperature_end: temperature_schedule 'cosine' needs temperature_end",
        "variants[0].temperature[1]: must be > 0, got 0",
    ]
    assert "invalid config, 6 problems: " in text, text
    for problem in problems:
        assert problem in text, text
    assert "~" not in text  # the stand-in names of unnamed variants are never shown


def test_a_bad_name_template_with_valid_fields_reports_only_the_name():
    text = _error({"seeds": [1], "reference": "g", "variants": [{"name": "g", "temperature": [0.5, 1.0]}]})
    assert text == ("invalid config: variants[0].name: template 'g' gives repeated names; include every swept "
                    "field ({temperature}) in it")
