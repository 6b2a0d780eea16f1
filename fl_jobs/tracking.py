"""MLflow logging of a federated run, with metric names shared with the Azure ML steps.

Names: ``global_<metric>`` per round (e.g. ``global_accuracy``, ``global_loss``), and
``silo_<name>_<metric>`` per silo (``silo_silo-0_train_loss``, ``silo_silo-0_samples``); the
step is the round. By default runs go to a SQLite store inside the job's output folder, which
``mlflow ui --backend-store-uri sqlite:///...`` opens. MLflow is imported only when used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fl_jobs.config import JobConfig

EXPERIMENT = "fl-sandbox"


def round_metric_names(metrics: Mapping[str, float]) -> dict[str, float]:
    """The global model's metrics under their logged names (``global_<name>``)."""
    return {f"global_{k}": float(v) for k, v in metrics.items()}


def silo_metric_names(silo: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """A silo's metrics under their logged names (``silo_<silo>_<name>``)."""
    return {f"silo_{silo}_{k}": float(v) for k, v in metrics.items()}


def default_tracking_uri(output_dir: Path) -> str:
    return f"sqlite:///{(Path(output_dir) / 'mlflow.db').resolve()}"


def ui_command(tracking_uri: str) -> str:
    """The exact command that shows the run."""
    return f"mlflow ui --backend-store-uri {tracking_uri}"


class RunTracker:
    """One MLflow run: params once, metrics per round, final summary metrics."""

    def __init__(self, config: JobConfig) -> None:
        import logging

        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)
        os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        self.uri = config.tracking_uri or default_tracking_uri(config.output_dir)
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        self._mlflow = mlflow
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_experiment(EXPERIMENT)
        self.run = mlflow.start_run(run_name=f"{config.example}-{config.silos}silos")
        mlflow.log_params(flat_params(config))

    @property
    def run_id(self) -> str:
        return str(self.run.info.run_id)

    def log_round(
        self,
        round_index: int,
        global_metrics: Mapping[str, float],
        silo_metrics: Mapping[str, Mapping[str, float]],
    ) -> None:
        metrics = round_metric_names(global_metrics)
        for silo, values in silo_metrics.items():
            metrics.update(silo_metric_names(silo, values))
        self._mlflow.log_metrics(metrics, step=round_index)

    def log_final(self, metrics: Mapping[str, float], artifacts: list[Path]) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in artifacts:
            if Path(path).is_file():
                self._mlflow.log_artifact(str(path))

    def end(self, status: str = "FINISHED") -> None:
        self._mlflow.end_run(status=status)


def flat_params(config: JobConfig) -> dict[str, Any]:
    """The config as MLflow params (strings, no nested sections)."""
    data = config.model_dump(mode="json", exclude={"approval", "tracking_uri"})
    return {k: ("" if v is None else str(v)) for k, v in data.items()}
