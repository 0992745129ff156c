"""Worked examples for the report's parts: escaping, table rendering, case selection, activation shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from learnact.reporting import Cell, Table, compile_pdf, latex_escape, latexmk_available, to_latex, to_markdown
from learnact.reporting.fig_cases import select_cases
from learnact.reporting.latex import latex_text
from learnact.reporting.shapes import effective_activation


@pytest.mark.parametrize("text, expected", [
    ("adaptive_T0.7_lam0.01", r"adaptive\_T0.7\_lam0.01"),
    ("50% & #1 {x} $y ~ z^2", r"50\% \& \#1 \{x\} \$y \textasciitilde{} z\textasciicircum{}2"),
    ("0.97 \u00b1 0.01", r"0.97 \ensuremath{\pm} 0.01"),
    ("[-0.002, +0.001] ROC-AUC", r"[\ensuremath{-}0.002, +0.001] ROC-AUC"),
    ("epochs 300\u2013450, \u03bb", r"epochs 300\textendash{}450, \ensuremath{\lambda}"),
    ("back\\slash", r"back\textbackslash{}slash"),
    ("r\u00e9seau_\u03b1 \u6a21\u578b", "r\u00e9seau" + r"\_\ensuremath{\alpha} \texttt{U+6A21}\texttt{U+578B}"),
    ("\u03a9\u0391\u03c2\u03bf", r"\ensuremath{\Omega}\ensuremath{\mathrm{A}}\ensuremath{\varsigma}\ensuremath{\mathrm{o}}"),
])
def test_latex_escape(text, expected):
    assert latex_escape(text) == expected


def test_caption_math_is_kept_and_text_escaped():
    assert latex_text(r"weight $\lambda > 0$ for run_1") == r"weight $\lambda > 0$ for run\_1"
    with pytest.raises(ValueError, match="unbalanced"):
        latex_text("costs $5")


def _table() -> Table:
    rows = [[Cell("base_relu"), Cell("0.97 \u00b1 0.01", bold=True)], [Cell("gate|x"), Cell("0.95 \u00b1 0.02")]]
    return Table("demo", "Demo of x_y.", ["Variant", "Accuracy"], rows, "lr", pd.DataFrame({"a": [1]}),
                 rules_before=[1], group_titles={0: "Fixed", 1: "Learnable"}, notes="Bold: best.")


def test_markdown_bolds_best_and_escapes_pipes():
    md = to_markdown(_table())
    assert "| base_relu | **0.97 \u00b1 0.01** |" in md
    assert "| gate\\|x | 0.95 \u00b1 0.02 |" in md
    assert md.index("*Fixed*") < md.index("base_relu") < md.index("*Learnable*") < md.index("gate")
    assert "| :--- | ---: |" in md


def test_latex_table_is_booktabs_with_bold_rules_and_caption():
    tex = to_latex(_table())
    assert r"\begin{tabular}{lr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"base\_relu & \textbf{0.97 \ensuremath{\pm} 0.01} \\" in tex
    assert tex.count(r"\midrule") == 2  # after the header and before the second group
    assert r"\caption{Demo of x\_y. Bold: best.}" in tex and r"\label{tab:demo}" in tex


def test_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match="header has 2 columns"):
        Table("bad", "", ["a", "b"], [[Cell("x")]], "lr", pd.DataFrame())


def test_select_cases_picks_wrong_correct_and_least_certain():
    pred = pd.DataFrame({"y_true": [1, 0, 1, 0, 1, 0]})
    prob = np.array([0.99, 0.02, 0.10, 0.90, 0.55, 0.48])
    cases = select_cases(pred, prob, per_group=2)
    # Confidence of the predicted class: 0.99, 0.98, 0.90, 0.90, 0.55, 0.52.
    assert cases["wrong"] == [2, 3]            # misclassified, most confident first (ties keep row order)
    assert cases["correct"] == [0, 1]          # correct, most confident first
    assert cases["least certain"] == [5, 4]    # the rest, closest to chance first


def test_effective_activation_uses_the_registered_candidates():
    x = np.linspace(-3, 3, 13)
    xt = torch.as_tensor(x)
    one_hot = effective_activation(x, np.array([0.0, 1.0, 0.0]), ["relu", "tanh", "sigmoid"])
    np.testing.assert_allclose(one_hot, np.tanh(x), atol=1e-12)
    per_unit = effective_activation(x, np.array([[0.5, 0.5], [0.25, 0.75]]), ["relu", "sigmoid"])
    assert per_unit.shape == (2, 13)
    expected = 0.25 * torch.relu(xt) + 0.75 * torch.sigmoid(xt)
    np.testing.assert_allclose(per_unit[1], expected.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="2 candidates"):
        effective_activation(x, np.ones(3) / 3, ["relu", "tanh"])


def test_progress_lines_count_every_figure_and_say_which_were_not_drawn(families_no_gates_study, tmp_path):
    from learnact.reporting import figures, load_study_view

    lines: list[str] = []
    view = load_study_view(families_no_gates_study)
    results = figures.build_figures(view, tmp_path, workers=1, progress=lines.append)
    assert len(lines) == len(results) and [line.split(":")[0] for line in lines] == [
        f"figure {k}/{len(results)}" for k in range(1, len(results) + 1)]
    by_name = {line.split(": ")[1].split(" ")[0]: line for line in lines}
    assert set(by_name) == {r.spec.name for r in results}
    for r in results:
        if r.skipped:
            assert by_name[r.spec.name].endswith(f"{r.spec.name} (not drawn: {r.skipped})")
        else:
            assert by_name[r.spec.name].endswith(f": {r.spec.name}") and r.paths
    assert any("no gated variant" in line for line in lines) and any(not r.skipped for r in results)



@pytest.mark.skipif(not latexmk_available(),
                    reason="latexmk not found: install texlive-latex-base texlive-latex-recommended lmodern latexmk")
def test_every_character_a_name_may_hold_compiles_with_the_reports_preamble(tmp_path):
    """Accented Latin letters as they are, every Greek letter as math, anything else as its code point."""
    import unicodedata

    from learnact.reporting.latex import _PREAMBLE
    from learnact.reporting.render import _PDFLATEX_TEXT

    latin = "".join(chr(c) for lo, hi in _PDFLATEX_TEXT for c in range(lo, hi + 1))
    greek = "".join(chr(c) for c in range(0x0370, 0x0400) if unicodedata.name(chr(c), "").startswith("GREEK"))
    text = latex_escape(f"{latin} {greek} \u6a21\u578b \u0436 \u2603 \U0001f600")
    assert "U+6A21" in text and r"\ensuremath{\alpha}" in text and "\u00e9" in text
    tex = tmp_path / "names.tex"
    tex.write_text(_PREAMBLE + "\\begin{document}\n" + text + "\n\\end{document}\n", encoding="utf-8")
    assert compile_pdf(tex).read_bytes()[:5] == b"%PDF-"


def _warning_figure(view):
    import warnings

    from matplotlib.figure import Figure

    warnings.warn("Glyph 27169 (\\N{CJK UNIFIED IDEOGRAPH-6A21}) missing from font(s) DejaVu Sans.", stacklevel=1)
    warnings.warn("Glyph 27169 (\\N{CJK UNIFIED IDEOGRAPH-6A21}) missing from font(s) DejaVu Sans.", stacklevel=1)
    warnings.warn("something else the figure's code says", stacklevel=1)
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    return fig


def test_a_figures_missing_glyphs_are_collected_and_other_warnings_pass_once(tiny_study, tmp_path):
    import warnings

    from learnact.reporting import figures, load_study_view

    spec = figures.FigureSpec("warns", "Warns", "A figure that warns.", _warning_figure)
    view = load_study_view(tiny_study)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        results = figures.build_figures(view, tmp_path, (spec, spec), workers=1)
    assert [r.missing_glyphs for r in results] == [("\u6a21",), ("\u6a21",)]
    messages = [str(w.message) for w in caught]
    assert messages.count("something else the figure's code says") == 1, messages  # once, as Python shows it
    glyphs = [m for m in messages if "no glyph" in m]
    assert len(glyphs) == 1 and "\u6a21 (U+6A21)" in glyphs[0] and not any("missing from font" in m for m in messages)
