"""MLflow logging of a federated run, with metric names shared with the Azure ML steps.

Names: ``global_<metric>`` per round (e.g. ``global_accuracy``, ``global_loss``), and
``silo_<name>_<metric>`` per silo (``silo_silo-0_train_loss``, ``silo_silo-0_samples``); the
step is the round. By default runs go to a SQLite store inside the job's output folder, which
``mlflow ui --backend-store-uri sqlite:///...`` opens. MLflow is imported only when used.
"""

from __future__ import annotations

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


def flat_params(config: JobConfig) -> dict[str, Any]:
    """The config as MLflow params (strings; the strategy section as ``strategy`` (its
    name) and ``strategy.<option>``)."""
    data = config.model_dump(mode="json", exclude={"approval", "tracking_uri"})
    strategy = dict(data.pop("strategy"))
    params = {k: ("" if v is None else str(v)) for k, v in data.items()}
    params["strategy"] = str(strategy.pop("name"))
    params.update({f"strategy.{k}": str(v) for k, v in strategy.items()})
    return params
