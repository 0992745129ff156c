"""Fuzz the study-file and CSV loaders: success or a LearnactError, never anything else, quickly."""

from __future__ import annotations

import json
import math
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzzkit import examples, record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnact.exceptions import LearnactError


def fuzz_settings(ci_examples: int) -> settings:
    """Fixed seed, no example database, no per-example deadline (the tests bound time themselves)."""
    return settings(derandomize=True, deadline=None, database=None, max_examples=examples(ci_examples),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LOADER_BOUND_S = 5.0

_BASE = tomllib.loads(resources.files("learnact.presets").joinpath("headline.toml").read_text())

_SCALARS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63, 10**8, 4_000_000_000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e-300, 5e-324, 0.999, 1.0, 1e30, -1e308, math.inf, math.nan]),
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(["relu", "tanh", "sigmoid", "gelu", "prelu", "tahn", "layer", "neuron", "input", "fixed",
                     "gated", "x" * 300, "../../etc", "a/b", "", " ", "breast_cancer", "wine", "nope.csv"]),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=12)


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if len(prefix) > 20:  # deep nests are drawn whole; edits go into the study's own structure
        return out
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def _set(tree: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if rest:
        tree[head] = _set(tree[head], rest, value, delete)
    elif delete and isinstance(tree, dict):
        del tree[head]
    else:
        tree[head] = value
    return tree


@st.composite
def study_documents(draw: st.DrawFn) -> Any:
    """A valid study with a few random edits: values replaced, keys deleted or added, deep nesting."""
    doc = json.loads(json.dumps(_BASE))
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add", "nest"]))
        if action == "add" and isinstance(_get(doc, path), dict):
            _get(doc, path)[draw(st.text(min_size=1, max_size=10))] = draw(_VALUES)
        elif action == "nest":
            depth = draw(st.sampled_from([5, 50, 400]))
            nested: Any = 1
            for _ in range(depth):
                nested = [nested]
            doc = _set(doc, path, nested, False)
        else:
            doc = _set(doc, path, draw(_VALUES), action == "delete" and bool(path))
    if draw(st.booleans()) and isinstance(doc, dict):
        doc["seeds"] = draw(st.one_of(
            st.fixed_dictionaries({"count": st.sampled_from([0, 1, 3, 100_000_000, 2**40, -5])}),
            st.lists(st.integers(-5, 2**33), max_size=6)))
    if draw(st.booleans()) and isinstance(doc, dict):
        doc["sweep"] = {"temperature": [0.5 + i for i in range(draw(st.sampled_from([1, 3, 100])))],
                        "entropy_weight": [0.01 * i for i in range(draw(st.sampled_from([1, 1000])))]}
    return doc


def _get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _write(tmp: Path, doc: Any, fmt: str) -> Path:
    path = tmp / f"study.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(doc))
    else:
        path.write_text(yaml.safe_dump(doc) if _depth(doc) < 500 else json.dumps(doc))
    return path


def _depth(tree: Any) -> int:
    d = 0
    while isinstance(tree, list | dict) and tree:
        tree = tree[0] if isinstance(tree, list) else next(iter(tree.values()))
        d += 1
    return d


@fuzz_settings(150)
@given(doc=study_documents(), fmt=st.sampled_from(["json", "yaml"]))
def test_study_files(tmp_path: Path, doc: Any, fmt: str) -> None:
    from learnact.experiment import load_study

    path = _write(tmp_path, doc, fmt)
    with record("study file", json.dumps(doc, default=str)[:200]) as outcome:
        start = time.perf_counter()
        try:
            study = load_study(path)
            assert len(study.runs()) >= 1
        except LearnactError as exc:
            outcome["kind"] = "error"
            assert "\n" not in str(exc).strip() or len(str(exc)) < 4000
        assert time.perf_counter() - start < LOADER_BOUND_S


_CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "Infinity", "abc", '"1,2"', "1e999", " ", "NA", "null",
                     "0x10", "1_000", "\u00e9", "TRUE"]),
)


@st.composite
def csv_tables(draw: st.DrawFn) -> tuple[str, str | None]:
    n_cols = draw(st.integers(1, 5))
    n_rows = draw(st.integers(0, 40))
    header = [draw(st.sampled_from(["a", "b", "target", "label", "x", "a", "", "y y"])) for _ in range(n_cols)]
    numeric = draw(st.booleans())
    rows = []
    for r in range(n_rows):
        if numeric and draw(st.integers(0, 9)) > 0:
            rows.append([str(r % 3 if j == n_cols - 1 else (r * 7 + j) % 11) for j in range(n_cols)])
        else:
            rows.append([draw(_CELLS) for _ in range(draw(st.integers(n_cols - 1, n_cols + 1)))])
    text = "\n".join(",".join(row) for row in [header, *rows])
    target = draw(st.one_of(st.none(), st.sampled_from(header + ["missing"])))
    return text, target


@fuzz_settings(200)
@given(table=csv_tables())
def test_csv_files(tmp_path: Path, table: tuple[str, str | None]) -> None:
    from learnact.data import load_dataset

    text, target = table
    path = tmp_path / "data.csv"
    path.write_text(text)
    with record("csv", f"target={target!r} {text[:150]!r}") as outcome:
        start = time.perf_counter()
        try:
            ds = load_dataset(str(path), target)
            assert ds.X.shape[0] == len(ds.y) and ds.X.shape[0] > 0
            assert math.isfinite(float(abs(ds.X).sum()))
        except LearnactError:
            outcome["kind"] = "error"
        assert time.perf_counter() - start < LOADER_BOUND_S


@pytest.mark.parametrize("fmt", ["json", "yaml", "toml"])
def test_deep_nesting_is_a_config_error(tmp_path: Path, fmt: str) -> None:
    """A worked case the fuzzer also draws: 100,000 nested lists (RecursionError before)."""
    from learnact.experiment import load_study

    depth = 100_000
    text = {"json": "[" * depth + "]" * depth, "yaml": "[" * depth + "]" * depth,
            "toml": "a = " + "[" * depth + "]" * depth}[fmt]
    path = tmp_path / f"study.{fmt}"
    path.write_text(text)
    with pytest.raises(LearnactError):
        load_study(path)
