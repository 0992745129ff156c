"""The activation-shapes figure evaluates activations with torch once, where torch is loaded: the workers that
draw it never import torch (about 2 s each), and the figure is the same as drawn in one process."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from learnact.reporting.fig_shapes import activation_shapes_figure
from learnact.reporting.saving import save_figure
from learnact.reporting.shapes import shape_panels
from learnact.reporting.study_view import load_study_view
from learnact.reporting.style import figure_style

HERE = Path(__file__).resolve().parent


def _fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this test folder importable); its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}, cwd=HERE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_a_view_carrying_its_shape_panels_draws_the_same_figure_without_torch(tiny_study, tmp_path):
    view = load_study_view(tiny_study)
    panels = shape_panels(view)
    families = view.families
    assert families and view.gated  # the fixture has both kinds of panel
    assert any(p is not None and p.initial is not None for p in panels.values())  # a family's initial shape
    assert all(view.runs[v][0]._cache.get("state") is not None for v in families)  # weights were read here
    with figure_style():
        fig, _ = activation_shapes_figure(view)
        here = save_figure(fig, tmp_path / "here", "shapes")[1].read_bytes()
    (tmp_path / "view.pkl").write_bytes(pickle.dumps(view))
    out = _fresh(f"""
        import pickle, sys, json
        from pathlib import Path
        from learnact.reporting.fig_shapes import activation_shapes_figure
        from learnact.reporting.saving import save_figure
        from learnact.reporting.style import figure_style
        view = pickle.loads(Path({str(tmp_path / "view.pkl")!r}).read_bytes())
        with figure_style():
            fig, _ = activation_shapes_figure(view)
            save_figure(fig, Path({str(tmp_path / "there")!r}), "shapes")
        print(json.dumps("torch" in sys.modules))
    """)
    assert json.loads(out) is False
    assert (tmp_path / "there" / "shapes.pdf").read_bytes() == here


def test_the_panels_are_the_activations_the_models_compute(tiny_study):
    """Independent of the figure code: a static gate's panel is the softmax-weighted candidates at x, and a family
    panel's seeds are the median over units of the run's own module."""
    import torch

    from learnact.model.activations import get_candidate

    view = load_study_view(tiny_study)
    panels = shape_panels(view)
    x = np.linspace(-4, 4, 241)
    run = view.runs["static_cold"][0]
    gate = next(g for g in run.gates() if int(g["layer"]) == 1)
    want = sum(w * get_candidate(n)(torch.as_tensor(x)).numpy()
               for w, n in zip(gate["weights"], gate["candidates"], strict=True))
    np.testing.assert_allclose(panels["static_cold", 1].lines[0], want, rtol=1e-12, atol=1e-12)
    fam = view.runs["prelu_unit"][1]
    module = fam.family_module(2)
    with torch.no_grad():
        per_unit = module.curves(torch.as_tensor(x, dtype=torch.float32)).double().numpy().T
    np.testing.assert_array_equal(panels["prelu_unit", 2].lines[1], np.median(per_unit, axis=0))


def test_build_figures_evaluates_the_shapes_in_a_caller_with_torch_so_its_workers_do_not(tiny_study, tmp_path):
    out = _fresh(f"""
        import json, sys
        from pathlib import Path
        import torch
        from learnact.reporting import parallel
        parallel._forks_helper = lambda: False  # the fork server's workers: a helper's inherit torch (at no cost)
        from learnact.reporting.shapes import shape_panels
        from learnact.reporting.figures import FigureSpec, build_figures
        from learnact.reporting.study_view import load_study_view
        from _draw_probe import shapes_noting_torch
        view = load_study_view(Path({str(tiny_study)!r}))
        specs = tuple(FigureSpec(f"shapes{{i}}", "t", "c", shapes_noting_torch, prepare=shape_panels) for i in (1, 2))
        results = build_figures(view, Path({str(tmp_path)!r}), specs, workers=2)
        print(json.dumps([r.detail for r in results]))
    """)
    assert json.loads(out) == ["torch loaded: False"] * 2


def test_workers_forked_from_a_caller_with_torch_evaluate_the_shapes_themselves(tiny_study, tmp_path):
    # learnact run: the report's workers are forks of the process that trained (through its helper), torch loaded;
    # the worker that draws the figure evaluates the shapes, not the caller before any worker starts
    out = _fresh(f"""
        import json
        from pathlib import Path
        import numpy as np
        import torch
        from PIL import Image
        from learnact.reporting import parallel
        from learnact.reporting.shapes import shape_panels
        from learnact.reporting.figures import FigureSpec, build_figures
        from learnact.reporting.study_view import load_study_view
        from _draw_probe import shapes_noting_torch
        spec = FigureSpec("shapes", "t", "c", shapes_noting_torch, prepare=shape_panels)
        other = FigureSpec("other", "t", "c", shapes_noting_torch)  # two figures: two workers
        seen = {{}}
        for workers in (2, 1):
            view = load_study_view(Path({str(tiny_study)!r}))
            folder = Path({str(tmp_path)!r}) / str(workers)
            forks = parallel.workers_have_this_process(workers, 2)
            results = build_figures(view, folder, (spec, other), workers=workers)
            seen[workers] = {{"forks": forks, "caller_prepared": "_activation_shape_panels" in view.__dict__,
                             "detail": results[0].detail,
                             "pixels": np.asarray(Image.open(folder / "shapes.png")).tolist()}}
        print(json.dumps([seen[2]["forks"], seen[2]["caller_prepared"], seen[2]["detail"], seen[1]["forks"],
                          seen[1]["caller_prepared"], seen[2]["pixels"] == seen[1]["pixels"]]))
    """)
    assert json.loads(out) == [True, False, "torch loaded: True", False, True, True]


def test_a_spread_band_is_drawn_over_units_only(tiny_study, tmp_path):
    # a per-layer family has one curve per seed: pooled over seeds, they drew a band the legend calls the
    # "spread over samples / units"
    from learnact.experiment import run_study, study_from_dict

    study = study_from_dict({"name": "layer_family", "seeds": [1, 2, 3], "backbone": {"hidden": [4]},
                             "train": {"max_epochs": 2},
                             "variants": [{"name": "prelu_layer", "kind": "prelu"}]})
    run_study(study, tmp_path / "s")
    layer_panels = shape_panels(load_study_view(tmp_path / "s"))
    assert layer_panels["prelu_layer", 1].band is None and len(layer_panels["prelu_layer", 1].lines) == 3
    assert shape_panels(load_study_view(tiny_study))["prelu_unit", 1].band is not None  # per unit: a spread
