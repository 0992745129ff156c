"""Family hyper-parameters as validated config fields: errors with paths, run ids, the init template."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import learnact
from learnact.config import ActivationConfig, RunConfig
from learnact.exceptions import ConfigError
from learnact.experiment.example import example_text
from learnact.experiment.grid import load_study, study_from_dict, study_to_dict
from learnact.model import MLP, init_parameters_
from learnact.model.activations.families import family_params_model, list_families

SRC = str(Path(learnact.__file__).resolve().parents[1])


def _study(*variants, **top):
    return study_from_dict({"name": "s", "seeds": [1], **top, "variants": list(variants)})


def _error(*variants) -> str:
    with pytest.raises(ConfigError) as info:
        _study(*variants)
    return str(info.value)


def test_bad_family_params_are_reported_with_their_path():
    text = _error({"name": "a", "kind": "fixed"}, {"name": "b"}, {"name": "c", "kind": "prelu"},
                  {"name": "d", "kind": "spline", "params": {"grid_size": 0}})
    assert text == "invalid config: variants[3].params.grid_size: must be in [1, 1024], got 0"
    # the same check on the config object names the field in the object's terms
    with pytest.raises(ValueError, match=r"params\.grid_size\n.*must be in \[1, 1024\], got 0"):
        ActivationConfig(kind="spline", params={"grid_size": 0})


@pytest.mark.parametrize(("variant", "expected"), [
    ({"kind": "spline", "params": {"grid_sise": 8}},
     "variants[0].params.grid_sise: not a parameter of family 'spline' (did you mean 'grid_size'?); its parameters: "
     "granularity, lo, hi, order, grid_size, init, base"),
    ({"kind": "prelu", "params": {"grid_size": 8}},
     "variants[0].params.grid_size: not a parameter of family 'prelu'; its parameters: granularity, init_slope"),
    ({"kind": "pwl", "params": {"lo": 3, "hi": -3}}, "variants[0].params: lo must be < hi, got lo=3, hi=-3"),
    ({"kind": "spline", "params": {"init": "tahn"}}, "variants[0].params.init: unknown activation 'tahn' "
                                                     "(did you mean 'tanh'?)"),
    ({"kind": "spline", "params": {"order": 2.5}}, "variants[0].params.order: expected an integer, got 2.5 (float)"),
    ({"kind": "neural", "params": {"granularity": "neuron"}},
     "variants[0].params.granularity: must be one of 'layer', 'unit', got 'neuron'"),
    ({"kind": "kernel", "params": {"size": 1}}, "variants[0].params.size: must be in [2, 1024], got 1"),
    ({"kind": "gated", "params": {"grid_size": 8}}, "variants[0].params: only the learnable families (kernel, "
                                                    "maxout, neural, prelu, pwl, rational, spline, swish) take params"),
    ({"kind": "spline", "params": [{"grid_size": 4}, {"grid_size": -1}]},
     "variants[0].params[1].grid_size: must be in [1, 1024], got -1"),
    # values that passed and then stopped the run with an internal error (overflow, a least squares fit that did
    # not converge, a division by zero), or allocated without bound
    ({"kind": "rational", "params": {"num_degree": 1000}}, "variants[0].params.num_degree: must be in [1, 25], got "
                                                           "1000"),
    ({"kind": "pwl", "params": {"lo": -1e300, "hi": 1e300}},
     "variants[0].params: lo and hi must lie within ±1e+06 (the range's points are float32)"),
    ({"kind": "kernel", "params": {"size": 2, "lo": -1e-300, "hi": 1e-300}},
     "variants[0].params: hi - lo must be at least 1e-06 here"),
    ({"kind": "pwl", "params": {"lo": 999_999.999, "hi": 1e6}},
     "variants[0].params: hi - lo must be at least 1 here (1e-06 times the larger of 1, |lo| and |hi|"),
    ({"kind": "spline", "params": {"grid_size": 100_000}}, "variants[0].params.grid_size: must be in [1, 1024]"),
    ({"kind": "maxout", "params": {"pieces": 5000}}, "variants[0].params.pieces: must be in [2, 1024], got 5000"),
])
def test_each_kind_of_params_problem_names_the_field_and_the_fix(variant, expected):
    assert expected in _error({"name": "v_{params}", **variant})


def test_every_problem_is_listed_at_once():
    text = _error({"name": "a", "kind": "spline", "params": {"order": 0, "grid_size": 0, "base": "nope"}})
    for field in ("order", "grid_size", "base"):
        assert f"variants[0].params.{field}:" in text


def test_params_sweep_as_a_list_of_tables_and_name_their_variants():
    study = _study({"kind": "spline", "params": [{"grid_size": 4}, {"grid_size": 8, "init": "relu"}]})
    assert [v.name for v in study.variants] == ["spline_grid_size4", "spline_grid_size8-initrelu"]
    assert [v.activation.family_params().grid_size for v in study.variants] == [4, 8]
    assert study.variants[1].activation.family_params().init == "relu"


# Digest of the sorted run ids of the paper and headline presets and of one run per family and per kind, computed
# with the code before families took parameters (commit e4c84aa): params at their defaults must change no id.
_IDS_BEFORE = "f997fe2e3486f8399cdbe1fc2f69f69645126188b551a5e246da069f6c0e6931"


def _ids_now() -> list[str]:
    ids = [r.run_id for p in ("paper", "headline") for r in load_study(p).runs()]
    study = _study({"name": "f_{kind}", "kind": ["kernel", "maxout", "neural", "prelu", "pwl", "rational", "swish",
                                                 "gated", "fixed"]}, seeds=[1, 2])
    return ids + [r.run_id for r in study.runs()]


def test_run_ids_at_default_params_are_those_from_before_params_existed():
    digest = hashlib.sha256("\n".join(sorted(_ids_now())).encode()).hexdigest()
    assert digest == _IDS_BEFORE


def test_spelled_out_defaults_keep_the_id_and_other_values_change_it():
    def run_id(**act):
        return RunConfig(variant="v", seed=1, activation=ActivationConfig(**act)).run_id

    for name in list_families():
        defaults = family_params_model(name)().model_dump()
        assert run_id(kind=name) == run_id(kind=name, params=defaults), name
        assert ActivationConfig(kind=name, params=defaults).params == {}
        other = "unit" if defaults["granularity"] == "layer" else "layer"
        assert run_id(kind=name, params={"granularity": other}) != run_id(kind=name), name
    assert ActivationConfig(kind="pwl", params={"segments": 8, "lo": -3}).canonical() == {"kind": "pwl"}
    assert ActivationConfig(kind="pwl", params={"segments": 4}).canonical() == {"kind": "pwl", "params": {"segments": 4}}


def test_params_survive_the_study_json_round_trip_and_configs_stay_hashable():
    study = _study({"name": "sp", "kind": "spline", "params": {"grid_size": 7, "granularity": "layer"}},
                   {"name": "pr", "kind": "prelu"})
    again = study_from_dict(json.loads(json.dumps(study_to_dict(study))))
    assert [r.run_id for r in again.runs()] == [r.run_id for r in study.runs()]
    assert again.variants[0].activation.params == {"grid_size": 7, "granularity": "layer"}
    acts = {v.activation for v in again.variants} | {v.activation for v in study.variants}
    assert len(acts) == 2


def test_family_params_of_fixed_or_gated_is_an_error():
    with pytest.raises(ValueError, match="kind 'gated' is not a learnable family"):
        ActivationConfig().family_params()


# A non-default value for every parameter of every family, and the parameter shapes it gives (layer granularity
# unless set). The test checks it covers every registered family and field, so a new one needs its example here.
EXAMPLES = {
    "prelu": ({"granularity": "unit", "init_slope": 0.1}, {"slope": (16,)}),
    "swish": ({"granularity": "unit", "init_beta": 2.0}, {"beta": (16,)}),
    "rational": ({"granularity": "layer", "num_degree": 3, "den_degree": 2}, {"numerator": (4,), "denominator": (2,)}),
    "pwl": ({"granularity": "unit", "segments": 4, "lo": -2.0, "hi": 2.0}, {"values": (16, 5)}),
    "maxout": ({"granularity": "unit", "pieces": 5}, {"slopes": (16, 5), "offsets": (16, 5)}),
    "kernel": ({"granularity": "unit", "size": 10, "lo": -2.0, "hi": 2.0}, {"alpha": (16, 10), "tails": (16, 2)}),
    "neural": ({"granularity": "unit", "hidden": 3},
               {"inner_weight": (16, 3), "inner_bias": (16, 3), "outer_weight": (16, 3), "outer_bias": (16,)}),
    "spline": ({"granularity": "layer", "order": 2, "grid_size": 7, "lo": -2.0, "hi": 4.0, "init": "tanh",
                "base": "identity"},
               {"coefficients": (9,), "base_weight": (), "spline_weight": ()}),
}


def test_examples_cover_every_family_and_parameter():
    assert sorted(EXAMPLES) == list_families()
    for name, (params, _) in EXAMPLES.items():
        assert set(params) == set(family_params_model(name).model_fields), name
        defaults = family_params_model(name)().model_dump()
        assert all(params[k] != defaults[k] for k in params if k != "granularity"), name


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_build_model_passes_every_param_to_the_factory(name):
    params, shapes = EXAMPLES[name]
    act = ActivationConfig(kind=name, params=params)
    model = MLP(6, (16,), 1, act)
    module = model.activations[0]
    assert module.hparams.model_dump() == family_params_model(name).model_validate(params).model_dump()
    assert {k: tuple(p.shape) for k, p in module.named_parameters()} == shapes
    out = model(torch.randn(3, 6))
    assert out.shape == (3, 1) and torch.isfinite(out).all()


def test_the_init_template_shows_every_family_and_its_commented_examples_load(tmp_path):
    for suffix in (".toml", ".yaml"):
        text = example_text(Path("study" + suffix))
        for name in list_families():
            defaults = family_params_model(name)().model_dump()
            assert re.search(rf"#\s+{name}: granularity={defaults['granularity']}", text), (suffix, name)
        marker = "# The families and their parameters"
        head, tail = text.split(marker)
        lines = [re.sub(r"^(\s*)# ?", r"\1", line) if not re.match(r"^\s*#\s+\w+: granularity=", line) else line
                 for line in tail.splitlines()[1:]]
        (tmp_path / ("on" + suffix)).write_text(head + "\n".join(lines) + "\n")
    toml, yaml = load_study(tmp_path / "on.toml"), load_study(tmp_path / "on.yaml")
    names = [v.name for v in toml.variants]
    assert names[-4:] == ["family_prelu", "family_rational", "spline_grid_size5", "spline_grid_size10-initrelu"]
    assert [r.run_id for r in toml.runs()] == [r.run_id for r in yaml.runs()]
    assert toml.variants[-4].activation.family_params().granularity == "unit"
    assert toml.variants[-1].activation.params == {"grid_size": 10, "init": "relu"}


def test_the_cli_rejects_bad_params_in_one_line_with_exit_code_2(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('name = "s"\nseeds = [1]\n[[variants]]\nname = "sp"\nkind = "spline"\n'
                    'params = { grid_size = 0, order = 3 }\n')
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-m", "learnact", "run", "--config", str(path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert "variants[0].params.grid_size: must be in [1, 1024], got 0" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_study_with_per_unit_families_trains(tmp_path):
    from learnact import store
    from learnact.experiment import run_study

    study = _study({"name": "u_{kind}", "kind": ["prelu", "spline"], "params": {"granularity": "unit"}},
                   train={"max_epochs": 2})
    run_study(study, tmp_path / "s", engine="sequential")
    runs = store.finished_runs(tmp_path / "s")
    assert len(runs) == 2
    n_params = {store.read_run_config(r).variant: store.read_metrics(r)["n_params"] for r in runs}
    base = sum(p.numel() for p in init_parameters_(MLP(30, (64, 32), 1, "relu"), torch.Generator()).parameters())
    assert n_params["u_prelu"] == base + 64 + 32
    assert n_params["u_spline"] == base + 10 * (64 + 32)
