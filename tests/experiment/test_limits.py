"""Limits, checked while the study file is validated, before anything is allocated or written (issue 11).

Before: ``seeds = {count = 100000000}`` allocated 6 GB before anything was
printed, a sweep grid of 10^8 variants was expanded in memory, ``hidden =
[4000000000]`` failed in torch's allocator after the study folder was
written, ``patience = 2**70`` overflowed in training, a long variant name
failed with ``OSError: [Errno 36] File name too long`` and a deeply nested
file with ``RecursionError``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import learnact
from learnact.config import (
    MAX_CONFIG_DEPTH,
    MAX_EPOCHS,
    MAX_HIDDEN_LAYERS,
    MAX_HIDDEN_WEIGHTS,
    MAX_NAME_BYTES,
    MAX_RUNS,
    MAX_RUNS_ENV,
    MAX_SEED,
    MAX_WIDTH,
    StudyConfig,
    max_runs,
)
from learnact.exceptions import ConfigError
from learnact.experiment.grid import grid_size, load_study, study_from_dict
from learnact.experiment.runner import run_study

SRC = str(Path(learnact.__file__).resolve().parents[1])


def _study(**changes) -> dict:
    raw = {"name": "lim", "seeds": [1], "backbone": {"hidden": [4]}, "train": {"max_epochs": 2, "patience": 2},
           "variants": [{"name": "v", "kind": "fixed"}]}
    raw.update(changes)
    return raw


def _error(raw) -> str:
    with pytest.raises(ConfigError) as info:
        study_from_dict(raw)
    text = str(info.value)
    assert "\n" not in text
    return text


def _limit_memory() -> None:
    """In the child: at most 2 GiB of address space (a full `learnact run` of a tiny study needs well under)."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


SWEEP_10_8 = {f: list(range(1, 11)) for f in ("max_epochs", "patience", "batch_size")} | {
    f: [0.1 * i for i in range(1, 11)] for f in ("lr", "temperature", "entropy_weight", "weight_decay", "min_delta")}


DEEP_JSON = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.mark.parametrize("config_text, expected", [
    (json.dumps(_study(seeds={"count": 100_000_000})), "the study expands to 100,000,000 runs (1 variant x 100,000,000 seeds)"),
    (json.dumps(_study(variants=[SWEEP_10_8])), "the study expands to 100,000,000 runs (100,000,000 variants x 1 seed)"),
    (json.dumps(_study(backbone={"hidden": [4_000_000_000]})), "backbone.hidden: every width must be <= 65536 (MAX_WIDTH)"),
    (json.dumps(_study(train={"patience": 2**70})), f"train.patience: must be <= 1000000 (MAX_EPOCHS), got {2**70}"),
    (json.dumps(_study(variants=[{"name": "x" * 300, "kind": "fixed"}])),
     "variants[0].name: variant name must be at most 100 bytes (MAX_NAME_BYTES; it names folders), got 300 bytes"),
    (DEEP_JSON, "nests lists or tables too deeply"),
], ids=["seeds-count", "grid-10^8", "width", "patience", "long-name", "deep-json"])
def test_the_real_cli_refuses_at_once_with_one_line_and_writes_nothing(tmp_path, config_text, expected):
    config = tmp_path / "study.json"
    config.write_text(config_text)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "learnact", "run", "--config", str(config), "--out", str(out),
                           "--quiet", "--no-report"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": SRC}, preexec_fn=_limit_memory)
    assert done.returncode == 2, done.stderr[-3000:]
    assert expected in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_grid_size_is_computed_without_expanding():
    assert grid_size(SWEEP_10_8) == 10**8
    assert grid_size({"name": "a{temperature}", "temperature": [1, 2, 3], "candidates": [["relu"], ["tanh"]]}) == 6
    assert grid_size({"candidates": ["relu", "tanh"], "kind": "gated"}) == 1  # a list of names is not a sweep
    assert grid_size({"bogus": [1, 2, 3]}) == 1  # unknown keys are reported, not swept


def test_the_run_limit_counts_variants_times_seeds_and_the_environment_overrides_it(monkeypatch):
    assert max_runs() == MAX_RUNS == 100_000
    two_by_two = _study(seeds=[1, 2], variants=[{"name": "v{temperature}", "temperature": [0.5, 1.0]}])
    monkeypatch.setenv(MAX_RUNS_ENV, "3")
    text = _error(two_by_two)
    assert "the study expands to 4 runs (2 variants x 2 seeds), more than the limit of 3" in text
    assert MAX_RUNS_ENV in text
    assert "more than the limit of 3" in _error(_study(seeds={"count": 4}))
    with pytest.raises(ValueError, match="more than the limit of 3"):  # the library path checks it too (pydantic)
        StudyConfig.model_validate({"seeds": {"count": 4}, "variants": [{"name": "v"}]})
    with pytest.raises(ValueError, match="expands to 4 runs"):
        StudyConfig.model_validate({"seeds": [1, 2], "variants": [{"name": "a"}, {"name": "b"}]})
    monkeypatch.setenv(MAX_RUNS_ENV, "4")
    assert len(study_from_dict(two_by_two).runs()) == 4
    for bad in ("abc", "0", "-5", "1.5"):
        monkeypatch.setenv(MAX_RUNS_ENV, bad)
        with pytest.raises(ConfigError, match=f"environment variable {MAX_RUNS_ENV} must be an integer >= 1 .*got "
                                              f"'{bad}'"):
            study_from_dict(two_by_two)


def test_seeds_stay_below_2_to_the_32():
    assert MAX_SEED == 2**32 - 1
    assert study_from_dict(_study(seeds=[0, 2**32 - 1])).seeds == (0, 2**32 - 1)
    assert f"seeds: must be integers in [0, {MAX_SEED}], got [4294967296]" in _error(_study(seeds=[2**32]))
    assert study_from_dict(_study(seeds={"count": 5, "base": 2**32 - 5})).seeds[-1] == 2**32 - 1
    text = _error(_study(seeds={"count": 5, "base": 2**32 - 4}))
    assert "seeds: must stay below 2**32: base + count - 1 = 4294967296 > 4294967295 (MAX_SEED)" in text


def test_widths_and_layers_have_caps_that_the_message_names():
    assert study_from_dict(_study(backbone={"hidden": [MAX_WIDTH]})).backbone.hidden == (MAX_WIDTH,)
    assert (f"backbone.hidden: every width must be <= {MAX_WIDTH} (MAX_WIDTH), got [8, {MAX_WIDTH + 1}]"
            in _error(_study(backbone={"hidden": [8, MAX_WIDTH + 1]})))
    text = _error(_study(backbone={"hidden": [4] * (MAX_HIDDEN_LAYERS + 1)}))
    assert f"backbone.hidden: must list at most {MAX_HIDDEN_LAYERS} layers (MAX_HIDDEN_LAYERS), got 65" in text
    text = _error(_study(backbone={"hidden": [20_000, 20_000]}))
    assert f"give 400,000,000 weights between hidden layers, more than the limit of {MAX_HIDDEN_WEIGHTS:,}" in text
    assert (f"variants[0].gate_hidden: must be <= {MAX_WIDTH} (MAX_WIDTH), got 1000000"
            in _error(_study(variants=[{"name": "g", "gate": "input", "gate_hidden": 10**6}])))


def test_epochs_and_patience_have_caps_in_the_study_and_in_variant_overrides():
    assert study_from_dict(_study(train={"max_epochs": MAX_EPOCHS, "patience": MAX_EPOCHS})).train.patience == MAX_EPOCHS
    assert "train.max_epochs: must be <= 1000000 (MAX_EPOCHS), got 1000001" in _error(
        _study(train={"max_epochs": MAX_EPOCHS + 1}))
    text = _error(_study(variants=[{"name": "p{patience}", "kind": "fixed", "patience": [3, 2**70]}]))
    assert f"variants[0].patience[1]: must be <= 1000000 (MAX_EPOCHS), got {2**70}" in text
    assert "train.patience: must be >= 1, got 0" in _error(_study(train={"patience": 0}))  # lower bound as before


def test_names_fit_file_systems_counted_in_bytes(tmp_path):
    assert MAX_NAME_BYTES == 100
    assert "variant name must be at most 100 bytes" in _error(_study(variants=[{"name": "é" * 51, "kind": "fixed"}]))
    assert "got 102 bytes" in _error(_study(variants=[{"name": "é" * 51, "kind": "fixed"}]))
    assert "name: study name must be at most 100 bytes" in _error(_study(name="s" * 101))
    text = _error(_study(variants=[{"name": "long_{temperature}" + "x" * 93, "temperature": [0.5, 0.25]}]))
    assert "variants[0].name: variant name must be at most 100 bytes" in text
    assert "variant name must be valid Unicode text" in _error(_study(variants=[{"name": "a\ud800"}]))
    assert "must not contain control characters" in _error(_study(variants=[{"name": "a\nb"}]))
    # the longest allowed names make run folders the file system accepts
    study = study_from_dict(_study(name="s" * 100, seeds=[MAX_SEED], variants=[{"name": "v" * 100, "kind": "fixed"}]))
    result = run_study(study, tmp_path / "study")
    assert result.n_trained == 1
    assert [p.name for p in (tmp_path / "study" / "runs").iterdir()] == [study.runs()[0].run_id]


DEPTH = 100_000


@pytest.mark.parametrize("suffix, text", [
    (".json", '{"name": ' + "[" * DEPTH + "]" * DEPTH + "}"),
    (".toml", "name = " + "[" * DEPTH + "]" * DEPTH + "\n"),
    (".yaml", "name: " + "[" * DEPTH + "]" * DEPTH + "\n"),
    (".json", '{"name": ' + "[" * 100 + "]" * 100 + "}"),  # parses, then fails the depth check
])
def test_deeply_nested_files_are_one_line_config_errors(tmp_path, suffix, text):
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_study(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert "too deeply" in message or f"more than {MAX_CONFIG_DEPTH} levels deep (MAX_CONFIG_DEPTH)" in message


def test_a_yaml_alias_bomb_is_refused_before_it_is_walked(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines += ["name: *a8"]  # 10**9 strings when walked
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"holds more than 1,000,000 values \(MAX_CONFIG_VALUES\)"):
        load_study(path)


def test_long_values_are_cut_in_messages():
    text = _error(_study(name=list(range(100_000))))
    assert "name: expected a string, got [0, 1, 2" in text and len(text) < 300


def test_every_limit_has_a_docstring():
    import learnact.config as config

    source = Path(config.__file__).read_text()
    for name in ("MAX_RUNS", "MAX_RUNS_ENV", "MAX_WIDTH", "MAX_HIDDEN_LAYERS", "MAX_HIDDEN_WEIGHTS", "MAX_EPOCHS",
                 "MAX_NAME_BYTES", "MAX_CONFIG_DEPTH", "MAX_CONFIG_VALUES", "MAX_SEED"):
        assert name in config.__all__
        after = source.split(f"\n{name} = ", 1)[1].split("\n", 2)
        assert after[1].startswith('"""'), f"{name} has no docstring"

