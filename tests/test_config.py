"""Config models: strict validation, messages with field paths, stable run ids (issue 4)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from learnact.config import (
    ActivationConfig,
    BackboneConfig,
    DataConfig,
    RunConfig,
    StudyConfig,
    TrainConfig,
    TrainOverrides,
    VariantConfig,
    format_validation_error,
)
from learnact.exceptions import ConfigError


def _message(model, **kwargs) -> str:
    with pytest.raises(ValidationError) as info:
        model(**kwargs)
    return str(format_validation_error(info.value, root=model))


@pytest.mark.parametrize(
    "model, kwargs, expected",
    [
        (TrainConfig, {"patience": 0}, "invalid config: patience: must be >= 1, got 0"),
        (TrainConfig, {"max_epochs": "300"}, "invalid config: max_epochs: expected an integer, got '300' (str)"),
        (TrainConfig, {"max_epochs": 3.0}, "max_epochs: expected an integer, got 3.0 (float)"),
        (TrainConfig, {"lr": float("inf")}, "lr: must be a finite number, got inf"),
        (TrainConfig, {"patiense": 3}, "patiense: unknown key (did you mean 'patience'?)"),
        (DataConfig, {"test_size": 1.0}, "test_size: must be in (0, 1), got 1.0"),
        (DataConfig, {"val_size": 0}, "val_size: must be in (0, 1), got 0"),
        (DataConfig, {"dataset": "irsi"}, "dataset: unknown dataset 'irsi' (did you mean 'iris'?); use one of breast_cancer, circles,"),
        (BackboneConfig, {"hidden": [8, 0]}, "hidden: every width must be >= 1, got [8, 0]"),
        (BackboneConfig, {"hidden": []}, "hidden: must list at least one layer width, got []"),
        (BackboneConfig, {"hidden": [8, "16"]}, "hidden[1]: expected an integer, got '16' (str)"),
        (ActivationConfig, {"temperature": 0.0}, "temperature: must be > 0, got 0.0"),
        (ActivationConfig, {"candidates": []}, "candidates: must name at least one activation, got []"),
        (ActivationConfig, {"candidates": ["relu", "relu"]}, "candidates: must not repeat a name"),
        (ActivationConfig, {"kind": "gatd"},
         "kind: must be one of fixed, gated, kernel, maxout, neural, prelu, pwl, rational, spline, swish, got 'gatd' (did you mean 'gated'?)"),
        (ActivationConfig, {"gate_hidden": 0}, "gate_hidden: must be >= 1, got 0"),
        (ActivationConfig, {"zz_top": 1}, "zz_top: unknown key; valid keys: kind, activation, candidates"),
    ],
)
def test_field_errors_name_the_field_the_value_and_the_fix(model, kwargs, expected):
    assert expected in _message(model, **kwargs)


def test_unknown_activation_lists_the_valid_names():
    text = _message(ActivationConfig, candidates=["relu", "tahn"])
    assert "candidates[1]: unknown activation 'tahn' (did you mean 'tanh'?)" in text
    assert "relu" in text and "sigmoid" in text and "silu" in text


def test_all_problems_in_one_message_with_nested_paths():
    with pytest.raises(ValidationError) as info:
        StudyConfig(seeds=[1, 1], data={"test_size": 2}, train={"patience": 0},
                    variants=[{"name": "a", "activation": {"temperature": -1}, "train": {"max_epochs": 0}}])
    text = str(format_validation_error(info.value, root=StudyConfig))
    assert text.startswith("invalid config, 5 problems: (1) ")
    for part in ("seeds: must not repeat, got [1, 1]", "data.test_size: must be in (0, 1), got 2",
                 "train.patience: must be >= 1, got 0", "variants[0].activation.temperature: must be > 0, got -1",
                 "variants[0].train.max_epochs: must be >= 1, got 0"):
        assert part in text


def test_format_validation_error_is_a_config_error_with_a_prefix():
    with pytest.raises(ValidationError) as info:
        TrainConfig(patience=0)
    err = format_validation_error(info.value, prefix="variants[3]")
    assert isinstance(err, ConfigError) and "variants[3].patience" in str(err)


def test_seeds_as_count_and_base():
    study = StudyConfig(seeds={"count": 3, "base": 10}, variants=[{"name": "a"}])
    assert study.seeds == (10, 11, 12)
    assert StudyConfig(seeds={"count": 2}, variants=[{"name": "a"}]).seeds == (0, 1)
    with pytest.raises(ValidationError, match="count = N, base = B"):
        StudyConfig(seeds={"count": 0}, variants=[{"name": "a"}])
    with pytest.raises(ValidationError, match="count = N, base = B"):
        StudyConfig(seeds={"count": 2, "start": 1}, variants=[{"name": "a"}])
    with pytest.raises(ValidationError, match=r"must be integers in \[0, 4294967295\], got \[-1\]"):
        StudyConfig(seeds=[-1], variants=[{"name": "a"}])


def test_study_cross_checks():
    with pytest.raises(ValidationError, match=r"variant names must be unique, repeated: \['a'\]"):
        StudyConfig(variants=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValidationError, match="no variant is named 'bse'; variants: base; the closest is 'base'"):
        StudyConfig(variants=[{"name": "base"}], reference="bse")
    with pytest.raises(ValidationError, match="variant name must be non-empty"):
        StudyConfig(variants=[{"name": "a b"}])
    with pytest.raises(ValidationError, match="study name must be"):
        StudyConfig(name="../x", variants=[{"name": "a"}])


def test_variant_training_overrides_are_validated_and_merged():
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        VariantConfig(name="a", train={"patience": 0})
    with pytest.raises(ValidationError) as info:
        VariantConfig(name="a", train={"patiense": 3})
    assert "train.patiense: unknown key (did you mean 'patience'?)" in str(
        format_validation_error(info.value, root=VariantConfig))
    variant = VariantConfig(name="a", train={"patience": 3})
    assert variant.model_dump()["train"] == {"patience": 3}
    merged = variant.resolve_train(TrainConfig(max_epochs=7))
    assert (merged.patience, merged.max_epochs) == (3, 7)
    assert TrainOverrides().model_dump(exclude_none=True) == {}


def test_configs_are_frozen():
    cfg = TrainConfig()
    with pytest.raises(ValidationError):
        cfg.patience = 3  # type: ignore[misc]


def _ids(study: StudyConfig) -> dict[tuple[str, int], str]:
    return {(r.variant, r.seed): r.run_id for r in study.runs()}


BASE = dict(
    seeds=[1, 2],
    train={"max_epochs": 50},
    variants=[
        {"name": "fixed_tanh", "activation": {"kind": "fixed", "activation": "tanh"}},
        {"name": "static", "activation": {"temperature": 0.7}},
        {"name": "long", "activation": {"temperature": 0.7}, "train": {"max_epochs": 90}},
    ],
)


def _study(**changes) -> StudyConfig:
    return StudyConfig(**{**BASE, **changes})


def _changed(a: StudyConfig, b: StudyConfig) -> set[str]:
    ia, ib = _ids(a), _ids(b)
    return {variant for (variant, seed), rid in ia.items() if ib.get((variant, seed)) != rid}


def test_run_ids_are_stable_and_change_only_for_affected_runs():
    base = _study()
    assert _ids(base) == _ids(_study())  # same config, same ids
    variants = [dict(v) for v in BASE["variants"]]
    variants[1] = {"name": "static", "activation": {"temperature": 0.5}}
    assert _changed(base, _study(variants=variants)) == {"static"}
    # a study-level training field: every run that does not override it
    assert _changed(base, _study(train={"max_epochs": 60})) == {"fixed_tanh", "static"}
    # a field the kind ignores (candidates of a fixed activation) changes nothing
    variants = [dict(v) for v in BASE["variants"]]
    variants[0] = {"name": "fixed_tanh", "activation": {"kind": "fixed", "activation": "tanh",
                                                          "candidates": ["relu", "silu"]}}
    assert _changed(base, _study(variants=variants)) == set()
    # data settings change every run
    assert _changed(base, _study(data={"test_size": 0.3})) == {"fixed_tanh", "static", "long"}
    # more seeds and reordered variants keep the existing ids
    bigger = _study(seeds=[1, 2, 3], variants=list(reversed(BASE["variants"])))
    assert all(_ids(bigger)[key] == rid for key, rid in _ids(base).items())


def test_run_id_format():
    run = RunConfig(variant="v", seed=7)
    assert run.run_id.startswith("v__s7__") and len(run.run_id.split("__")[2]) == 10


@pytest.mark.parametrize("model, kwargs, expected", [
    (ActivationConfig, {"temperature": 1e39}, "temperature: must be <= 3.40282e+38 (float32), got 1e+39"),
    (ActivationConfig, {"temperature_schedule": "linear", "temperature_end": 1e39},
     "temperature_end: must be <= 3.40282e+38 (float32), got 1e+39"),
    (TrainConfig, {"lr": 1e39}, "lr: must be <= 3.40282e+38 (float32), got 1e+39"),
    (TrainConfig, {"weight_decay": 1e39}, "weight_decay: must be <= 3.40282e+38 (float32), got 1e+39"),
    (TrainConfig, {"entropy_weight": -1e39}, "entropy_weight: must be >= -3.40282e+38 (float32), got -1e+39"),
    (ActivationConfig, {"kind": "prelu", "params": {"init_slope": 1e39}},
     "params.init_slope: must be <= 3.40282e+38 (float32), got 1e+39"),
    (ActivationConfig, {"kind": "swish", "params": {"init_beta": -1e39}},
     "params.init_beta: must be >= -3.40282e+38 (float32), got -1e+39"),
])
def test_a_value_beyond_float32_is_refused_naming_the_limit(model, kwargs, expected):
    """These settings go into float32 tensors, where 1e39 became inf: a temperature of 1e39 gave a run that
    "finished" with its gates stuck at 1/3 and `Infinity` in gates.json and history.jsonl."""
    assert expected in _message(model, **kwargs)


def test_the_largest_float32_itself_is_accepted():
    import numpy as np

    top = float(np.finfo(np.float32).max)
    assert np.isfinite(np.float32(top))
    assert ActivationConfig(temperature=top).temperature == top
    assert TrainConfig(lr=top, weight_decay=top, entropy_weight=-top).lr == top
    with pytest.raises(ValidationError):
        ActivationConfig(temperature=float(np.nextafter(np.float64(top), np.inf)) * (1 + 1e-7))
