"""Metric names shared by the local run and the Azure ML steps; the default local store."""

from __future__ import annotations

from pathlib import Path

from fl_jobs.config import JobConfig
from fl_jobs.tracking import (
    default_tracking_uri,
    flat_params,
    round_metric_names,
    silo_metric_names,
    ui_command,
)


def test_metric_names() -> None:
    assert round_metric_names({"accuracy": 0.9, "loss": 0.3}) == {
        "global_accuracy": 0.9,
        "global_loss": 0.3,
    }
    assert silo_metric_names("silo-2", {"train_loss": 1.5, "samples": 10}) == {
        "silo_silo-2_train_loss": 1.5,
        "silo_silo-2_samples": 10.0,
    }


def test_default_store_is_sqlite_in_output_dir(tmp_path: Path) -> None:
    uri = default_tracking_uri(tmp_path / "run")
    assert uri == f"sqlite:///{(tmp_path / 'run' / 'mlflow.db').resolve()}"
    assert ui_command(uri) == f"mlflow ui --backend-store-uri {uri}"


def test_params_are_flat_strings() -> None:
    params = flat_params(JobConfig(example="digits", rounds=4))
    assert params["rounds"] == "4" and params["example"] == "digits"
    assert all(isinstance(v, str) for v in params.values()) and "approval" not in params
