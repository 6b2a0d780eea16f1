"""Write the run's final global model as an MLflow model (``<run>/model``) and log it to the
run's MLflow run (artifact path ``model``), so that ``mlflow.pyfunc.load_model`` and
``fl-sandbox predict`` score new rows with it.

The model carries its architecture (a ``torch.export`` program), its signature (the input
columns and the prediction) and the preprocessing the run's own evaluation used (see
fl_jobs.serving.pyfunc_model). For the tabular example the inputs are the CSV's columns
(without the target); the scaler is the one the reported metric was computed with, the
statistics of the orchestrator's held-out rows (each party standardises with its own
statistics, and the model is evaluated as the orchestrator's party). For the other examples the
inputs are the example's prepared features, ``x0`` ... ``x<n-1>``, as in its test set.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fl_jobs.local.prepare import PreparedJob

MODEL_DIR = "model"
ARTIFACT_PATH = "model"
PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")


def layout_of(prepared: PreparedJob) -> dict[str, Any]:
    """The JSON layout the pyfunc model reads (see pyfunc_model)."""
    example, dataset = prepared.example, prepared.dataset
    base = dict(dataset.input_layout or {})
    if not base:
        n = dataset.shape.n_features
        names = [f"x{i}" for i in range(n)]
        base = {
            "input_columns": names,
            "categorical": [],
            "encoded_columns": names,
            "scaler": None,
            "classes": None,
            "target": None,
        }
    base.update(
        {
            "format": "fl-sandbox/pyfunc/1",
            "example": example.name,
            "task": example.task,
            "metric": example.metric_name,
            "target_scale": float(example.target_scale),
        }
    )
    return base


def input_example(prepared: PreparedJob, rows: int = 5) -> Any:
    """A few input rows in the model's input schema, for the signature and the MLmodel file."""
    import pandas as pd

    layout = layout_of(prepared)
    rows_file = prepared.config.example.rows_file()
    if prepared.dataset.input_layout and rows_file is not None:
        from fl_jobs.examples.csv_format import read_csv_table

        frame = read_csv_table(Path(rows_file)).frame
        return frame[layout["input_columns"]].head(rows)
    X = prepared.dataset.test_X[:rows]
    return pd.DataFrame(X.astype(np.float64), columns=layout["input_columns"])


def export_program(prepared: PreparedJob, weights_file: Path, path: Path) -> None:
    """The global model with its weights as a ``torch.export`` program (free batch size)."""
    import torch
    from torch.export import Dim

    from fl_jobs.core.model_io import load_weights
    from fl_jobs.local.federation import initial_model

    model = initial_model(prepared)
    weights, _ = load_weights(weights_file)
    model.load_state_dict(weights)
    model.eval()
    sample = torch.from_numpy(np.ascontiguousarray(prepared.dataset.test_X[:2]))
    if len(sample) < 2:
        sample = sample.repeat(2, *([1] * (sample.dim() - 1)))
    program = torch.export.export(model, (sample,), dynamic_shapes=({0: Dim("batch")},))
    torch.export.save(program, str(path))


def save_model(prepared: PreparedJob, weights_file: Path, out: Path) -> Path:
    """Write the MLflow model of ``weights_file`` to ``out`` (replaced if present)."""
    import shutil

    import mlflow.pyfunc
    import torch
    from mlflow.models import infer_signature

    _quiet_mlflow()
    layout = layout_of(prepared)
    example_rows = input_example(prepared)
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(prefix="fl-model-") as tmp:
        program = Path(tmp) / "program.pt2"
        layout_file = Path(tmp) / "layout.json"
        export_program(prepared, weights_file, program)
        layout_file.write_text(json.dumps(layout, indent=2) + "\n")
        from fl_jobs.serving.scoring import load_pyfunc_class

        with warnings.catch_warnings():  # MLflow's advice on type hints, twice per model
            warnings.simplefilter("ignore")
            scorer = load_pyfunc_class()
            scorer.load_context(_Context({"program": str(program), "layout": str(layout_file)}))
            predictions = scorer.predict(None, example_rows)
            mlflow.pyfunc.save_model(
                path=str(out),
                python_model=str(PYFUNC_FILE),
                artifacts={"program": str(program), "layout": str(layout_file)},
                signature=infer_signature(example_rows, predictions),
                input_example=example_rows,
                pip_requirements=[
                    f"torch=={torch.__version__.split('+')[0]}",
                    f"mlflow=={mlflow.__version__}",
                    f"pandas=={_version('pandas')}",
                    f"numpy=={np.__version__}",
                ],
            )
    return out


def log_to_run(tracking_uri: str, run_id: str, model_dir: Path) -> str:
    """Log the saved model folder to the run; returns its ``runs:/`` URI."""
    from mlflow.tracking import MlflowClient

    _quiet_mlflow()
    MlflowClient(tracking_uri=tracking_uri).log_artifacts(run_id, str(model_dir), ARTIFACT_PATH)
    return f"runs:/{run_id}/{ARTIFACT_PATH}"


class _Context:
    def __init__(self, artifacts: dict[str, str]) -> None:
        self.artifacts = artifacts


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _quiet_mlflow() -> None:
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(mlflow|alembic|pydantic)(\.|$)")
