"""Optional preprocessing of raw feature tables: imputation, missing-value indicators, one-hot encoding.

Off by default: a table with text or missing values is refused with a message
naming the option that would help. When a study turns an option on
(``[data] one_hot = true``, ``impute = "median"``, ``missing_indicators =
true``), an :class:`Encoder` is fitted on each seed's training part only,
applied to every part, saved in the run's ``preprocessing.json`` and applied
again by ``learnact predict``. The standard scaler then works on the encoded
columns as before.

The maths is scikit-learn's ``SimpleImputer`` (median / most frequent, ties to
the smallest value, indicators for the columns with missing values at fit
time, appended after the features) and ``OneHotEncoder(handle_unknown="ignore")``
(categories sorted; an unseen category encodes as all zeros);
``tests/data/test_preprocess.py`` checks the encoded table against them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import CheckpointError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from ..config import DataConfig

__all__ = ["IMPUTE_STRATEGIES", "Encoder", "Preprocessing"]

IMPUTE_STRATEGIES = ("median", "most_frequent")
"""Values of ``data.impute``: numeric columns take their training median or most frequent value; text
columns always take their most frequent value."""


@dataclass(frozen=True)
class Preprocessing:
    """The preprocessing options of a study's ``[data]`` table.

    Attributes:
        one_hot: Encode text (categorical) feature columns as one 0/1 column per category.
        impute: ``None`` (missing values are an error), ``"median"`` or ``"most_frequent"``.
        missing_indicators: Add a 0/1 ``missing:<column>`` feature per column
            that had missing values in the training part (needs ``impute``).
    """

    one_hot: bool = False
    impute: str | None = None
    missing_indicators: bool = False

    def __post_init__(self) -> None:
        if self.impute is not None and self.impute not in IMPUTE_STRATEGIES:
            raise ValueError(f"impute must be None or one of {IMPUTE_STRATEGIES}, got {self.impute!r}")
        if self.missing_indicators and self.impute is None:
            raise ValueError("missing_indicators needs impute (\"median\" or \"most_frequent\")")

    @property
    def active(self) -> bool:
        """Whether any step is on (otherwise the table must be numeric and complete)."""
        return self.one_hot or self.impute is not None

    @classmethod
    def of(cls, data: DataConfig) -> Preprocessing:
        """The options of a study's data config."""
        return cls(data.one_hot, data.impute, data.missing_indicators)


def _is_text(column: pd.Series) -> bool:
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(column)


def _most_frequent(values: pd.Series) -> Any:
    """The most frequent non-missing value; ties go to the smallest (scikit-learn's rule)."""
    counts = values.dropna().value_counts()
    top = counts[counts == counts.max()].index
    return sorted(top)[0]


@dataclass(frozen=True)
class Encoder:
    """Imputation, indicators and one-hot encoding fitted on a training part.

    Attributes:
        columns: The raw input columns, in order.
        categories: ``{text column: sorted categories}``, one-hot encoded.
        fill: ``{column: value}`` used for missing values (empty without imputation).
        indicators: Columns that get a ``missing:<column>`` indicator feature.
    """

    columns: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fill: dict[str, float | str] = field(default_factory=dict)
    indicators: tuple[str, ...] = ()

    @classmethod
    def fit(cls, frame: pd.DataFrame, options: Preprocessing) -> Encoder:
        """Learn fill values and categories from ``frame`` (a training part's raw features).

        Raises:
            DataError: A column with no value at all in the training part, or
                text / missing values that no option handles.
        """
        columns = tuple(str(c) for c in frame.columns)
        fill: dict[str, float | str] = {}
        categories: dict[str, tuple[str, ...]] = {}
        for c in frame.columns:
            col = frame[c]
            text = _is_text(col)
            if text and not options.one_hot:
                raise DataError(f"feature column {str(c)!r} holds text; set data.one_hot = true to encode it")
            if col.isna().any():
                if options.impute is None:
                    raise DataError(f"feature column {str(c)!r} has missing values; set data.impute = \"median\" "
                                    f"(or \"most_frequent\") to fill them")
                if col.isna().all():
                    raise DataError(f"feature column {str(c)!r} has no value in a training part, so nothing can "
                                    f"be imputed; drop the column")
            if options.impute is not None:
                if text:
                    fill[str(c)] = str(_most_frequent(col.astype("string")))
                elif options.impute == "median":
                    fill[str(c)] = float(np.nanmedian(col.to_numpy(np.float64)))
                else:
                    fill[str(c)] = float(_most_frequent(col.astype(np.float64)))
            if text:
                seen = col.dropna().astype(str)
                if str(c) in fill:
                    seen = col.astype("string").fillna(str(fill[str(c)])).astype(str)
                categories[str(c)] = tuple(sorted(set(seen)))
        indicators = tuple(str(c) for c in frame.columns if options.missing_indicators and frame[c].isna().any())
        return cls(columns, categories, fill, indicators)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the encoded columns: numeric columns as they are, ``col=category``, then ``missing:col``."""
        out: list[str] = []
        for c in self.columns:
            out += [f"{c}={k}" for k in self.categories[c]] if c in self.categories else [c]
        return tuple(out) + tuple(f"missing:{c}" for c in self.indicators)

    def transform(self, frame: pd.DataFrame, where: str = "input") -> np.ndarray:
        """Encode ``frame`` (columns matched by name; others ignored) to float64.

        Raises:
            DataError: Missing columns, missing values where nothing was
                imputed at fit time, text in a numeric column, or infinities.

        Shape:
            - output: ``(len(frame), len(output_names))``
        """
        import pandas as pd

        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(f"{where} lacks feature columns {missing[:5]}{' ...' if len(missing) > 5 else ''}; "
                            f"the run was trained on columns {list(self.columns)[:8]}")
        parts: list[np.ndarray] = []
        for c in self.columns:
            col = frame[c]
            isna = col.isna().to_numpy()
            if isna.any() and c not in self.fill:
                raise DataError(f"{where} has missing values in column {c!r}, which the run never imputed; fill "
                                f"them, or train with data.impute = \"median\"")
            if c in self.categories:
                values = col.astype("string").fillna(str(self.fill.get(c, ""))).astype(str).to_numpy()
                cats = np.asarray(self.categories[c], dtype=object)
                parts.append((values[:, None] == cats[None, :]).astype(np.float64))
                continue
            numbers = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
            bad = np.isnan(numbers) & ~isna
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(f"{where} has text in numeric column {c!r} (row {i + 1}: {col.iloc[i]!r}); fix it "
                                f"or drop the row")
            if isna.any():
                numbers = np.where(isna, float(self.fill[c]), numbers)
            if not np.isfinite(numbers).all():
                raise DataError(f"{where} has infinite values in column {c!r}; replace them with finite numbers")
            parts.append(numbers[:, None])
        for c in self.indicators:
            parts.append(frame[c].isna().to_numpy(np.float64)[:, None])
        return np.concatenate(parts, axis=1) if parts else np.empty((len(frame), 0))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "encoder", "columns": list(self.columns),
                "categories": {c: list(v) for c, v in self.categories.items()},
                "fill": dict(self.fill), "indicators": list(self.indicators)}

    @classmethod
    def from_dict(cls, d: Any) -> Encoder:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            CheckpointError: Malformed fields (names the field).
        """
        def bad(what: str) -> CheckpointError:
            return CheckpointError(f"preprocessing JSON is malformed ({what}); rerun the study to rewrite it")

        if not isinstance(d, dict) or d.get("kind") != "encoder":
            raise bad("encoder is not an object of kind 'encoder'")
        columns = d.get("columns")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) or \
                len(set(columns)) != len(columns):
            raise bad("encoder.columns must be distinct strings")
        categories = d.get("categories")
        if not isinstance(categories, dict) or not all(
                c in columns and isinstance(v, list) and v and all(isinstance(k, str) for k in v)
                for c, v in categories.items()):
            raise bad("encoder.categories must map input columns to non-empty lists of strings")
        fill = d.get("fill")
        if not isinstance(fill, dict) or not all(
                c in columns and (isinstance(v, str) if c in categories else
                                  isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v))
                for c, v in fill.items()):
            raise bad("encoder.fill must map input columns to finite numbers (text columns: strings)")
        indicators = d.get("indicators")
        if not isinstance(indicators, list) or not all(c in columns for c in indicators):
            raise bad("encoder.indicators must list input columns")
        return cls(tuple(columns), {c: tuple(v) for c, v in categories.items()},
                   {c: (v if isinstance(v, str) else float(v)) for c, v in fill.items()}, tuple(indicators))
