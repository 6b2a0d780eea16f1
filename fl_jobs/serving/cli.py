"""``fl-sandbox predict``: score new rows with a run's final global model."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from fl_jobs.cli.cli_errors import bad_input


def predict(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="A run folder (e.g. runs/latest), an MLflow model folder, runs:/<run id>/model, "
        "models:/<name>/<version>, or a run id",
    ),
    data: Path = typer.Option(
        ..., "--data", help="CSV of rows to score: the training CSV's columns (target optional)"
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Write the rows with a prediction column here (default: stdout)"
    ),
    tracking_uri: str = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow store of a runs:/ or models:/ model (default: $MLFLOW_TRACKING_URI)",
    ),
) -> None:
    """Score the rows of a CSV with a run's final global model (its MLflow model).

    If the CSV also holds the target column, the accuracy (or RMSE) is printed on stderr.
    """
    from fl_jobs.errors import FLJobError
    from fl_jobs.serving.scoring import layout, load_model, read_rows

    try:
        rows = read_rows(data)
        loaded = load_model(model, tracking_uri)
        info = layout(loaded)
    except FLJobError as exc:
        bad_input(str(exc))
        return
    columns = info["input_columns"]
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        bad_input(
            f"{data}: input lacks column {missing[0]!r}{more}",
            f"the model reads the columns: {', '.join(columns)}",
        )
    try:
        predictions = loaded.predict(rows)
    except Exception as exc:  # MLflow's schema check (e.g. text in a numeric column)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        bad_input(f"{data}: the model refused the rows: {first}", "check the columns' values")
        return
    scored = rows.copy()
    scored["prediction"] = predictions["prediction"].to_numpy()
    if out is None:
        scored.to_csv(sys.stdout, index=False)
    else:
        scored.to_csv(out, index=False)
        sys.stderr.write(f"wrote {len(scored)} predictions to {out}\n")
    target = info.get("target")
    if target and target in rows.columns:
        import numpy as np

        truth = rows[target]
        if info["task"] == "classification":
            value = float(np.mean(truth.astype(str).to_numpy() == scored["prediction"].astype(str)))
            sys.stderr.write(f"accuracy: {100 * value:.2f}% on {len(rows)} rows ({target!r})\n")
        else:
            error = truth.to_numpy(dtype=np.float64) - scored["prediction"].to_numpy()
            value = float(np.sqrt(np.mean(error**2)))
            sys.stderr.write(f"rmse: {value:.4f} on {len(rows)} rows ({target!r})\n")
