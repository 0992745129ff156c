"""The name registry: config validation reads only it, and it equals the registries of the modules it names."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from learnact import names
from learnact.config import ActivationConfig, StudyConfig
from learnact.exceptions import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "matplotlib", "sklearn", "scipy")


def test_the_registry_equals_the_modules_registries():
    from learnact.data.sources import BUILTIN_DATASETS
    from learnact.evaluation.metrics import METRICS
    from learnact.experiment.engines import ENGINES
    from learnact.experiment.grid import list_presets
    from learnact.model.activations import GateKind, candidates, families, family_params_model

    assert set(names.BUILTIN_CANDIDATES) <= set(candidates.list_candidates())
    assert names.list_candidates() == candidates.list_candidates()
    assert names.list_families() == families.list_families()
    for kind in families.list_families():
        assert names.family_params_model(kind) is family_params_model(kind) is families.get_family(kind).Params
    assert tuple(BUILTIN_DATASETS) == names.BUILTIN_DATASETS
    assert tuple(METRICS) == names.METRICS
    assert tuple(ENGINES) == names.ENGINES and names.DEFAULT_ENGINE in ENGINES
    assert typing.get_args(GateKind) == names.GATE_KINDS
    assert typing.get_args(ActivationConfig.model_fields["gate"].annotation) == names.GATE_KINDS
    assert list_presets is names.list_presets and "paper" in names.list_presets()


def test_the_builtin_candidates_are_exactly_those_the_model_defines():
    """A fresh interpreter: before any user registration, the two lists are the same set."""
    code = ("from learnact import names; from learnact.model.activations import candidates; "
            "assert tuple(candidates.list_candidates()) == tuple(sorted(names.BUILTIN_CANDIDATES)), "
            "(candidates.list_candidates(), names.BUILTIN_CANDIDATES)")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(SRC)})


def test_a_candidate_registered_at_run_time_validates():
    from learnact.model.activations import register_candidate

    with pytest.raises(ValueError, match="unknown activation 'cube_names_test'"):
        ActivationConfig(kind="fixed", activation="cube_names_test")
    register_candidate("cube_names_test", lambda x: x**3)
    assert ActivationConfig(kind="fixed", activation="cube_names_test").activation == "cube_names_test"
    assert ActivationConfig(candidates=("relu", "cube_names_test")).candidates == ("relu", "cube_names_test")
    assert "cube_names_test" in names.list_candidates()


def test_a_family_registered_at_run_time_validates():
    from learnact.family_params import FamilyParams
    from learnact.model.activations import families, register_family

    class OffsetParams(FamilyParams):
        offset: float = 0.0

    register_family("offset_names_test", families.PReLU, OffsetParams)
    cfg = ActivationConfig(kind="offset_names_test", params={"offset": 2.0})
    assert cfg.family_params() == OffsetParams(offset=2.0)
    with pytest.raises(ValueError, match="already registered"):
        register_family("offset_names_test", families.PReLU, OffsetParams)
    with pytest.raises(ValueError, match="already registered"):
        names.register_family("prelu", OffsetParams)


def test_unknown_names_are_reported_from_the_registry():
    with pytest.raises(ConfigError, match=r"unknown activation 'rleu' \(did you mean 'relu'\?\)"):
        from learnact.experiment.grid import study_from_dict

        study_from_dict({"variants": [{"name": "v", "kind": "fixed", "activation": "rleu"}]})
    with pytest.raises(ValueError, match=r"unknown dataset .irsi. \(did you mean .iris.\?\)"):
        StudyConfig.model_validate({"data": {"dataset": "irsi"}, "variants": [{"name": "v"}]})


def _heavy_modules_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return eval(out.stdout.strip().splitlines()[-1])  # a list literal printed by the probe


def test_validating_the_paper_preset_loads_neither_torch_nor_matplotlib():
    code = ("import learnact.config as c\nfrom learnact.experiment.grid import load_study\n"
            "study = load_study('paper')\nassert isinstance(study, c.StudyConfig) and len(study.runs()) > 10\n"
            "c.StudyConfig.model_validate(study.model_dump())\n"
            "c.ActivationConfig(kind='spline', params={'init': 'tanh', 'grid_size': 8})")
    assert _heavy_modules_after(code) == []


def test_the_probe_sees_torch_when_it_is_loaded():  # the check above can fail
    assert "torch" in _heavy_modules_after("import learnact.model")


@pytest.mark.parametrize("text, problem", [
    ('name = "x"\nseeds = [1]\n[[variants]]\nname = "a"\nkind = "fixed"\nactivation = "tahn"\n', "tahn"),
    ('name = "x"\nseeds = [1]\nbogus = 1\n', "bogus"),
    ('name = "x"\nseeds = [1]\n[[variants]]\nname = "a"\nkind = "spline"\nparams = {grid_size = 0}\n',
     "grid_size"),
])
def test_a_bad_study_file_is_refused_before_torch_loads(tmp_path, text, problem):
    # learnact run validates the study (and the engine name) first: a typo costs a fraction of a second, not the
    # seconds torch takes to import
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    code = (f"import contextlib, io\nfrom learnact.cli import main\nerr = io.StringIO()\n"
            f"with contextlib.redirect_stderr(err):\n    try:\n"
            f"        main(['run', '--config', {str(bad)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
            f"    except SystemExit as e:\n        code = e.code\n"
            f"assert code == 2 and {problem!r} in err.getvalue(), (code, err.getvalue())")
    assert _heavy_modules_after(code) == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["--version"], ["list", "schedules"]])
def test_help_and_list_load_no_torch(argv):
    code = (f"from learnact.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n"
            f"    assert e.code in (0, None), e.code")
    assert "torch" not in _heavy_modules_after(code)
    assert "matplotlib" not in _heavy_modules_after(code)


def test_listing_everything_loads_no_scikit_learn():
    """`learnact list` shows the data set registry without importing scikit-learn or scipy (about 2 s against a
    0.5 s budget otherwise): learnact.data loads its modules on first use."""
    code = ("from learnact.cli import main\ntry:\n    main(['list'])\nexcept SystemExit as e:\n"
            "    assert e.code in (0, None)")
    assert _heavy_modules_after(code) == []


def test_lazy_package_exports_still_resolve():
    import learnact
    import learnact.experiment as experiment
    import learnact.reporting as reporting
    from learnact import GatedActivation
    from learnact.model.activations.gated import GatedActivation as Direct

    assert GatedActivation is Direct
    for lazy in (experiment, reporting):  # the names they list are the names they load on first use
        assert sorted(lazy.__all__) == sorted(lazy._MODULE_OF)
        for name in lazy.__all__:
            assert getattr(lazy, name) is not None
    assert set(learnact._MODULE_OF) <= set(learnact.__all__)  # the root's lazy names, beside its eager ones
    for name in learnact.__all__:
        assert hasattr(learnact, name), name
    for package in (learnact, experiment, reporting):  # one __getattr__ and __dir__ serve all three (learnact._lazy)
        with pytest.raises(AttributeError, match=f"module '{package.__name__}' has no attribute 'not_a_name'"):
            package.not_a_name  # noqa: B018
        assert set(package._MODULE_OF) <= set(dir(package))
