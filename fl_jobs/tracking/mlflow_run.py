"""MLflow logging of a federated run, with metric names shared with the Azure ML steps.

Names: ``global_<metric>`` per round (e.g. ``global_accuracy``, ``global_loss``), and
``silo_<name>_<metric>`` per silo (``silo_silo-0_train_loss``, ``silo_silo-0_samples``); the
step is the round. The store is, in this order: ``--tracking-uri`` (``tracking_uri``),
``$MLFLOW_TRACKING_URI``, and by default one SQLite store per project folder,
``runs/mlflow.db`` under the current folder, shared by every run started there so that
``mlflow ui --backend-store-uri sqlite:///...`` compares them. A resumed run stays in the store
it started in. MLflow is imported only when used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from fl_jobs.config import TRACKING_SCHEMES, JobConfig
from fl_jobs.errors import JobConfigError

EXPERIMENT = "fl-sandbox"
#: The store shared by the runs of a project folder (beside ``runs/<name>/``).
SHARED_STORE = Path("runs") / "mlflow.db"
TRACKING_ENV = "MLFLOW_TRACKING_URI"


def round_metric_names(metrics: Mapping[str, float]) -> dict[str, float]:
    """The global model's metrics under their logged names (``global_<name>``)."""
    return {f"global_{k}": float(v) for k, v in metrics.items()}


def silo_metric_names(silo: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """A silo's metrics under their logged names (``silo_<silo>_<name>``)."""
    return {f"silo_{silo}_{k}": float(v) for k, v in metrics.items()}


def default_tracking_uri() -> str:
    """The project folder's shared store, ``runs/mlflow.db`` (absolute)."""
    return f"sqlite:///{SHARED_STORE.resolve()}"


def env_tracking_uri() -> str | None:
    """``$MLFLOW_TRACKING_URI`` if set, checked as ``--tracking-uri`` is (bad input: exit 2
    before anything is written)."""
    value = os.environ.get(TRACKING_ENV, "").strip()
    if not value:
        return None
    scheme = value.split(":", 1)[0].split("+", 1)[0] if ":" in value else ""
    if scheme == "file":
        raise JobConfigError(
            f"{TRACKING_ENV}={value!r} is a file store, which MLflow 3 refuses (maintenance mode)",
            "set it to a SQLite store, e.g. sqlite:///runs/mlflow.db, or unset it",
        )
    if scheme not in TRACKING_SCHEMES:
        raise JobConfigError(
            f"{TRACKING_ENV}={value!r} is not an MLflow store URI",
            f"set it to one starting with {', '.join(s + ':' for s in TRACKING_SCHEMES)}, "
            f"e.g. sqlite:///runs/mlflow.db, or unset it",
        )
    return value


def tracking_uri_for(config: JobConfig, recorded: str | None = None) -> str:
    """Where a run logs: ``recorded`` (the store a resumed run started in), else the job's
    ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the shared ``runs/mlflow.db``."""
    return recorded or config.run.tracking_uri or env_tracking_uri() or default_tracking_uri()


def run_name(config: JobConfig, started: datetime | None = None) -> str:
    """What ran, as MLflow lists it: ``mnist-fedavg-5silos-20261204-230102`` (with ``--name``
    first when given)."""
    stamp = (started or datetime.now()).strftime("%Y%m%d-%H%M%S")
    parts = [config.run.name] if config.run.name and config.run.name != config.example.name else []
    parts += [config.example.name, config.strategy.name, f"{config.federation.silos}silos", stamp]
    if config.secure_aggregation.enabled:
        parts.insert(-1, "secagg")
    if config.privacy.clip_norm is not None:
        parts.insert(-1, "dp")
    return "-".join(parts)


def run_tags(config: JobConfig, run_dir: Path) -> dict[str, str]:
    """Tags to filter and group runs by in ``mlflow ui``, and the whole job file."""
    job = config.model_dump(mode="json", exclude={"run": {"approval", "tracking_uri"}})
    return {
        "fl_sandbox.run_dir": str(Path(run_dir).resolve()),
        "fl_sandbox.example": config.example.name,
        "fl_sandbox.strategy": config.strategy.name,
        "fl_sandbox.silos": str(config.federation.silos),
        "fl_sandbox.rounds": str(config.federation.rounds),
        "fl_sandbox.partition": config.federation.partition,
        "fl_sandbox.secure_aggregation": str(bool(config.secure_aggregation.enabled)).lower(),
        "fl_sandbox.dp": str(config.privacy.clip_norm is not None).lower(),
        "fl_sandbox.config": yaml.safe_dump(job, sort_keys=True)[:7900],
    }


def ui_command(tracking_uri: str) -> str:
    """The exact command that shows the run."""
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def flat_params(config: JobConfig) -> dict[str, Any]:
    """The config as MLflow params (strings; the strategy section as ``strategy`` (its
    name) and ``strategy.<option>``)."""
    data = config.flat()
    del data["approval"], data["tracking_uri"]
    strategy = dict(data.pop("strategy"))
    params = {k: ("" if v is None else str(v)) for k, v in data.items()}
    params["strategy"] = str(strategy.pop("name"))
    params.update({f"strategy.{k}": str(v) for k, v in strategy.items()})
    return params
