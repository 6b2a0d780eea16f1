"""What the end of a finished local run does with its model (called by fl_jobs.run.job): save the
MLflow model in the run folder, then log it to the run's MLflow run. A failure here is a
warning: the run's results and ``global_model.pt`` are already on disk."""

from __future__ import annotations

import sys
from pathlib import Path

from fl_jobs.local.prepare import PreparedJob
from fl_jobs.serving.export import ARTIFACT_PATH, MODEL_DIR, log_to_run, save_model


def save_run_model(prepared: PreparedJob, weights_file: Path, run_dir: Path) -> Path | None:
    """``<run_dir>/model``, or None (with a warning) if it could not be written."""
    try:
        return save_model(prepared, weights_file, run_dir / MODEL_DIR)
    except Exception as exc:
        _warn(f"the MLflow model was not saved ({type(exc).__name__}: {exc})")
        return None


def model_uri(run_id: str) -> str:
    return f"runs:/{run_id}/{ARTIFACT_PATH}"


def log_run_model(tracking_uri: str, run_id: str, model_dir: Path) -> None:
    try:
        log_to_run(tracking_uri, run_id, model_dir)
    except Exception as exc:
        _warn(
            f"the model was not logged to MLflow ({type(exc).__name__}: {exc}); it is in "
            f"{model_dir}"
        )


def _warn(text: str) -> None:
    line = " ".join(text.split())
    sys.stderr.write(f"warning: {line}\n")
    sys.stderr.flush()
