"""``learnact predict``: apply a finished run to new rows."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .app import app

__all__ = ["predict"]


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run folder (STUDY/runs/<run_id>)."),
    data: str = typer.Argument(..., help="CSV or Parquet file with the feature columns, or a data set name."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write predictions to this CSV file (default: stdout); never inside a run folder."),
) -> None:
    """Predict with a saved run (weights + preprocessing): class probabilities, or values for a regression run."""
    import pandas as pd

    from ..data import BUILTIN_DATASETS, Preprocessing, load_dataset
    from ..data.sources import read_table
    from ..exceptions import DataError
    from ..experiment.loading import load_run, predict_table
    from ..store import output_file
    from .errors import state

    state.writes_to = out

    if out is not None:  # a folder, part of a study, or in a folder that does not exist: refused before any work
        from ..store import check_output_path

        check_output_path(out, "--out", "predictions.csv")
    run = load_run(run_dir)
    if data in BUILTIN_DATASETS:
        ds = load_dataset(data, preprocessing=Preprocessing.of(run.config.data))
        frame = ds.raw if ds.raw is not None else pd.DataFrame(ds.X, columns=list(ds.feature_names))
    else:
        path = Path(data)
        if not path.is_file():
            raise DataError(f"input {data!r} is neither a file nor a built-in data set ({', '.join(BUILTIN_DATASETS)})")
        frame = read_table(path)
        if frame.empty and len(frame.columns):
            raise DataError(f"input {data!r} has a header but no data rows; add one row per sample to predict")
    table = predict_table(run, frame)
    if out is not None:
        with output_file(out) as tmp:
            table.to_csv(tmp, index=False)
        print(f"wrote {len(table)} predictions to {out}")
    else:
        table.to_csv(sys.stdout, index=False)
