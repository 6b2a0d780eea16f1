"""What the step bodies share: file names inside model folders, config loading, metrics
(their entry, parsing and exit codes, is fl_jobs.aml.steps.entry).

Model folders are plain files so that any step (or a person) can read them:
``model.pt`` (global weights + meta: round, example, task, input/output width),
``server_state.pt`` (the strategy's state carried between rounds, e.g. FedAdam's moments),
and in an update folder ``update.pt`` (weights + meta: n_samples, metrics) with
``metrics.json`` beside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fl_jobs.config import JobConfig, load_job_config
from fl_jobs.examples.base import Example
from fl_jobs.examples.registry import get_example

MODEL_FILE = "model.pt"
SERVER_STATE_FILE = "server_state.pt"
UPDATE_FILE = "update.pt"
METRICS_FILE = "metrics.json"


#: How an empty per-silo config travels on a command line.
NO_SILO_CONFIG = "none"


def encode_silo_config(config: Mapping[str, float]) -> str:
    """A strategy's per-silo, per-round settings as one command-line word:
    ``proximal_mu=0.01`` (comma-separated, exact float text), ``none`` when empty."""
    if not config:
        return NO_SILO_CONFIG
    return ",".join(f"{key}={float(value)!r}" for key, value in sorted(config.items()))


def decode_silo_config(text: str) -> dict[str, float]:
    """The inverse of :func:`encode_silo_config`; ValueError for anything else."""
    if text == NO_SILO_CONFIG:
        return {}
    config: dict[str, float] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            config[key] = float(value)
        except ValueError:
            raise ValueError(
                f"--train-config {text!r} is not KEY=NUMBER[,KEY=NUMBER...] or {NO_SILO_CONFIG}"
            ) from None
    return config


def load_config(path: Path) -> JobConfig:
    return load_job_config(path)


def example_for(config: JobConfig, task: str) -> Example:
    """The job's example, specialised to the data's task (tabular picks it from the data)."""
    return get_example(config.example.name).specialize(task)  # type: ignore[arg-type]


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(data), indent=2, sort_keys=True))


def _log(metrics: Mapping[str, float], *, step: int) -> None:
    """Log to MLflow when a tracking store is configured (Azure ML sets MLFLOW_TRACKING_URI
    for every step, and azureml-mlflow routes it to the workspace); a plain local run of a
    step logs nothing and needs no store."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return
    import mlflow

    if mlflow.active_run() is None:
        mlflow.start_run()
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_silo_metrics(silo: str, round_index: int, metrics: Mapping[str, float]) -> None:
    """A silo's training metrics (and ``samples``) under the local federation's names."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        from fl_jobs.tracking.mlflow_run import silo_metric_names

        _log(silo_metric_names(silo, metrics), step=round_index)


def log_round_metrics(
    round_index: int, metrics: Mapping[str, float], counts: Mapping[str, float] | None = None
) -> None:
    """The global model's test metrics under the local federation's names, and round counts
    (``silos_rejected``) under theirs."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        from fl_jobs.tracking.mlflow_run import round_metric_names

        _log({**round_metric_names(metrics), **(counts or {})}, step=round_index)
