"""`learnact init`: a commented example study that loads cleanly (issue 4)."""

from __future__ import annotations

from learnact.cli.app import app
from learnact.cli.errors import run_cli
from learnact.experiment.grid import load_study


def test_init_writes_a_commented_study_that_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(app, ["init"]) == 0
    assert capsys.readouterr().out.strip() == "wrote study.toml; edit it, then run: learnact run --config study.toml"
    text = (tmp_path / "study.toml").read_text()
    assert "learnact run --config study.toml --out my-study" in text
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 10
    study = load_study(tmp_path / "study.toml")
    assert [v.name for v in study.variants] == ["baseline_relu", "baseline_tanh", "static_T0.5", "static_T1",
                                                "static_T2", "input_lam0", "input_lam0.01"]


def test_init_yaml_is_the_same_study(tmp_path, capsys):
    assert run_cli(app, ["init", str(tmp_path / "s.yaml")]) == 0
    assert run_cli(app, ["init", str(tmp_path / "s.toml")]) == 0
    a, b = load_study(tmp_path / "s.yaml"), load_study(tmp_path / "s.toml")
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]


def test_init_does_not_overwrite_without_force(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    path.write_text("# my study\n")
    assert run_cli(app, ["init", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{str(path)!r} already exists; pass --force to overwrite it" in err and "Traceback" not in err
    assert path.read_text() == "# my study\n"
    assert run_cli(app, ["init", str(path), "--force"]) == 0
    assert load_study(path).name == "my-study"


def test_init_bad_names(tmp_path, capsys):
    assert run_cli(app, ["init", str(tmp_path / "study.txt")]) == 2
    assert "the name must end in .toml, .yaml or .yml" in capsys.readouterr().err
    assert run_cli(app, ["init", str(tmp_path / "no" / "study.toml")]) == 2
    assert "does not exist; create it first" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
