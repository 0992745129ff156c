"""User candidates from plugin modules and import paths, in this process, forkserver workers and Dask (issue 14)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import uuid
from pathlib import Path

import pandas as pd
import pytest

from console import SRC
from console import run_learnact as _learnact
from learnact.experiment.grid import study_from_dict, study_to_dict

METRICS = ["accuracy_mean", "accuracy_std", "f1_mean", "roc_auc_mean", "n_seeds"]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A plugin module on disk (a unique name): registers ``softsign2_<id>`` and defines ``bent``."""
    folder = tmp_path_factory.mktemp("plugin")
    name = f"acts_plugin_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(f"""
        import torch
        import learnact

        def softsign2(x):
            return x / (1 + x.abs())

        def bent(x):
            return (torch.sqrt(x * x + 1) - 1) / 2 + x

        learnact.register_candidate("softsign2_{name[-8:]}", softsign2)
    """))
    return folder, name


def _study(name: str, with_plugins: bool = True) -> dict:
    tag = name[-8:]
    return {
        "name": "plugged", "seeds": [1, 2], "backbone": {"hidden": [8]}, "train": {"max_epochs": 4},
        **({"plugins": [name]} if with_plugins else {}),
        "variants": [
            {"name": "tanh", "kind": "fixed", "activation": "tanh"},
            {"name": "mix_registered", "kind": "gated", "candidates": ["relu", f"softsign2_{tag}"]},
            {"name": "mix_by_path", "kind": "gated", "candidates": ["tanh", f"{name}:bent"]},
            {"name": "fixed_by_path", "kind": "fixed", "activation": f"{name}:bent"},
        ],
    }


def _board(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "leaderboard.csv").set_index("variant")[METRICS].sort_index()


@pytest.fixture(scope="module")
def local(plugin, tmp_path_factory) -> Path:
    folder, name = plugin
    root = tmp_path_factory.mktemp("local")
    (root / "study.json").write_text(json.dumps(_study(name)))
    proc = _learnact("run", "study.json", "--out", "study", "--no-report", "-q", "--executor", "local",
                     cwd=root, paths=[folder])
    assert proc.returncode == 0, proc.stderr
    return root / "study"


def test_forkserver_workers_train_plugin_candidates_as_this_process_does(plugin, local, tmp_path):
    folder, name = plugin
    (tmp_path / "study.json").write_text(json.dumps(_study(name)))
    proc = _learnact("run", "study.json", "--out", "study", "--no-report", "-q", "--executor", "processes",
                     "--workers", "2", cwd=tmp_path, paths=[folder])
    assert proc.returncode == 0, proc.stderr
    assert "(forkserver)" in (tmp_path / "study" / "study.log").read_text()
    pd.testing.assert_frame_equal(_board(tmp_path / "study"), _board(local))
    assert len(_board(local)) == 4


def test_dask_workers_import_the_plugin(plugin, local, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    folder, name = plugin
    monkeypatch.syspath_prepend(str(folder))  # the workers find the module as a user's cluster would
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), str(folder), os.environ.get("PYTHONPATH", "")]))
    (tmp_path / "study.json").write_text(json.dumps(_study(name)))
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            assert not any(client.run(lambda: name in sys.modules).values())  # not imported there before the study
            proc = _learnact("run", "study.json", "--out", "study", "--no-report", "-q", "--executor", "dask",
                             "--scheduler", cluster.scheduler_address, cwd=tmp_path, paths=[folder])
            assert proc.returncode == 0, proc.stderr
            assert any(client.run(lambda: name in sys.modules).values())  # a task imported it
    assert "executor dask" in (tmp_path / "study" / "study.log").read_text()
    pd.testing.assert_frame_equal(_board(tmp_path / "study"), _board(local))


def test_the_plugins_are_recorded_and_a_fresh_process_reads_the_study_back(plugin, local, tmp_path):
    folder, name = plugin
    saved = json.loads((local / "study.json").read_text())
    assert saved["plugins"] == [name]
    run = next(p for p in (local / "runs").iterdir() if p.name.startswith("mix_registered"))
    assert json.loads((run / "config.json").read_text())["plugins"] == [name]
    # predict and report in fresh processes import the plugin from the files
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(20)
    data.to_csv(tmp_path / "rows.csv", index=False)
    proc = _learnact("predict", str(run), "rows.csv", "--out", "pred.csv", cwd=tmp_path, paths=[folder])
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 20
    proc = _learnact("run", "--out", str(local), "--no-report", cwd=tmp_path, paths=[folder])  # resume
    assert proc.returncode == 0, proc.stderr
    assert "(0 trained, 8 already done)" in proc.stdout
    proc = _learnact("predict", str(run), "rows.csv", "--out", "p2.csv", cwd=tmp_path)  # plugin not importable
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert f"no module named {name!r}" in proc.stderr and "PYTHONPATH" in proc.stderr
    # a healthy run needing a plugin is not "corrupt" (the fix offered was to move it out and retrain it)
    for command in (["predict", str(run), "rows.csv", "--out", "p3.csv"], ["compare", str(local)],
                    ["report", str(local), "--out", "rep"]):
        proc = _learnact(*command, cwd=tmp_path)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "the run folder is fine" in proc.stderr and "corrupt" not in proc.stderr, proc.stderr
        assert "Value error" not in proc.stderr


def test_plugins_do_not_change_run_ids_or_the_files_of_other_studies():
    plain = study_from_dict({"name": "s", "seeds": [1], "variants": [{"name": "t", "kind": "fixed"}]})
    plugged = study_from_dict({"name": "s", "seeds": [1], "plugins": ["json"],
                               "variants": [{"name": "t", "kind": "fixed"}]})
    assert [r.run_id for r in plain.runs()] == [r.run_id for r in plugged.runs()]
    assert "plugins" not in study_to_dict(plain) and study_to_dict(plugged)["plugins"] == ["json"]
    assert study_from_dict(study_to_dict(plugged)).plugins == ("json",)


def test_the_command_line_plugin_option(plugin, tmp_path):
    folder, name = plugin
    raw = _study(name, with_plugins=False)
    raw["variants"] = raw["variants"][:2]
    (tmp_path / "study.json").write_text(json.dumps(raw))
    proc = _learnact("run", "study.json", "--out", "study", "--no-report", "-q", cwd=tmp_path, paths=[folder])
    assert proc.returncode == 2 and "unknown activation" in proc.stderr  # the plugin's name is unknown without it
    proc = _learnact("run", "study.json", "--plugin", name, "--out", "study", "--no-report", "-q", cwd=tmp_path,
                     paths=[folder])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "study" / "study.json").read_text())["plugins"] == [name]


@pytest.mark.parametrize(("change", "problem"), [
    ({"plugins": ["no_such_plugin_module"]}, "plugins: cannot import plugin 'no_such_plugin_module': no module "
                                             "named 'no_such_plugin_module'"),
    ({"plugins": ["not a module"]}, "plugins: plugin 'not a module' is not a module name"),
    ({"plugins": "json"}, "plugins: expected a list of module names"),
    ({"variants": [{"name": "v", "kind": "fixed", "activation": "json:nope"}]},
     "cannot import candidate 'json:nope': module 'json' has no 'nope'"),
    ({"variants": [{"name": "v", "kind": "fixed", "activation": "json:"}]},
     "candidate 'json:' is not a valid import path; write it as 'package.module:function'"),
    ({"variants": [{"name": "v", "kind": "gated", "candidates": ["relu", "json:__version__"]}]},
     "not a function"),
    # functions that are no activation: accepted, then every run failed with an internal error
    ({"variants": [{"name": "v", "kind": "fixed", "activation": "os:getcwd"}]},
     "candidate 'os:getcwd' is not an activation: calling it on a 2x3 tensor raised TypeError"),
    ({"variants": [{"name": "v", "kind": "gated", "candidates": ["relu", "torch:sum"]}]},
     "candidate 'torch:sum' is not an activation: on a 2x3 float32 tensor it returned shape (), dtype float32"),
    # a new dtype, and a function of 2-D input only (the stacked engine passes 3-D): internal errors in every run
    ({"variants": [{"name": "v", "kind": "fixed", "activation": "torch:signbit"}]},
     "candidate 'torch:signbit' is not an activation: on a 2x3 float32 tensor it returned shape (2, 3), dtype bool"),

])
def test_bad_plugins_and_import_paths_are_one_line_errors(tmp_path, change, problem):
    raw = {"name": "s", "seeds": [1], "train": {"max_epochs": 1},
           "variants": [{"name": "t", "kind": "fixed"}], **change}
    (tmp_path / "study.json").write_text(json.dumps(raw))
    proc = _learnact("run", "study.json", "--out", "study", "--no-report", "-q", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0], proc.stderr
    assert not (tmp_path / "study" / "runs").exists() or not any((tmp_path / "study" / "runs").iterdir())


def test_every_bad_import_path_is_named_with_its_variants_in_one_line(tmp_path):
    # the first failing path alone was reported, without the variant that names it
    raw = {"name": "s", "seeds": [1], "train": {"max_epochs": 1},
           "variants": [{"name": "a", "kind": "fixed", "activation": "json:nope"},
                        {"name": "b", "kind": "gated", "candidates": ["relu", "os:getcwd"]},
                        {"name": "c", "kind": "fixed", "activation": "json:nope"}]}
    (tmp_path / "study.json").write_text(json.dumps(raw))
    proc = _learnact("run", "study.json", "--out", "study", "--no-report", "-q", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "variants 'a', 'c': cannot import candidate 'json:nope'" in lines[0]
    assert "variant 'b': candidate 'os:getcwd' is not an activation" in lines[0]


def test_a_candidate_of_two_dimensional_input_only_is_refused_before_any_run(tmp_path):
    # it trained with the sequential engine, and the stacked engine (members, batch, width) failed with an
    # internal error in every run
    (tmp_path / "flat_acts.py").write_text("import torch\n\ndef flat(x):\n    assert x.dim() == 2\n"
                                           "    return torch.tanh(x)\n")
    raw = {"name": "s", "seeds": [1], "train": {"max_epochs": 1},
           "variants": [{"name": "v", "kind": "fixed", "activation": "flat_acts:flat"}]}
    (tmp_path / "study.json").write_text(json.dumps(raw))
    proc = _learnact("run", "study.json", "--out", "study", "--no-report", "-q", cwd=tmp_path, paths=[tmp_path])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "candidate 'flat_acts:flat' is not an activation: calling it on a 2x2x3 tensor raised AssertionError" \
        in proc.stderr and not (tmp_path / "study").exists()


def test_list_with_a_plugin_lists_what_it_registers(plugin, tmp_path):
    """A plugin's candidates worked in run, report and predict but `learnact list` had no --plugin to show them."""
    folder, name = plugin
    proc = _learnact("list", "candidates", "--plugin", name, cwd=tmp_path, paths=[folder])
    assert proc.returncode == 0, proc.stderr
    assert f"softsign2_{name[-8:]}" in proc.stdout
    missing = _learnact("list", "candidates", "--plugin", "no_such_plugin_module", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "--plugin" in missing.stderr
