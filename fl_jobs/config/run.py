"""The ``run`` section: where a run's files go, what it tracks, how it checkpoints and when it
gives up on a collapsed model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import field_validator

from fl_jobs.config.approval_spec import ApprovalSpec
from fl_jobs.examples.strict_model import StrictModel, setting

#: A run name is a folder name under ``runs/``.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

#: MLflow store schemes accepted for ``tracking_uri``.
TRACKING_SCHEMES = (
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "http",
    "https",
    "databricks",
    "azureml",
)


class RunSettings(StrictModel):
    title: ClassVar[str] = "Run: output, tracking, checkpoints"

    name: str | None = setting(
        None,
        help="Run name: runs go to runs/<name>/",
        default_text="(default: the example)",
    )
    output_dir: Path | None = setting(
        None,
        help="Run folder for silo data, checkpoint, model, plot, MLflow store; refused if it "
        "holds a run, unless --overwrite",
        default_text="(default: runs/<name>/<date-time>/, with runs/latest linking to the newest)",
    )
    overwrite: bool = setting(
        False,
        negatable=False,
        help="Replace the run in --output-dir (its files are deleted first)",
        default_text="(default: refuse)",
    )
    summary: Path | None = setting(
        None,
        help="Also write the JSON summary to this file",
        default_text="(default: summary.json in the run folder)",
    )
    tracking: bool = setting(True, help="Log to MLflow", default_text="(default: on)")
    tracking_uri: str | None = setting(
        None,
        help="MLflow tracking URI",
        default_text="(default: $MLFLOW_TRACKING_URI, else runs/mlflow.db, shared by the runs "
        "of the current folder)",
    )
    baselines: bool = setting(
        True, help="Also train centralized and local-only", default_text="(default: on)"
    )
    checkpoints: bool = setting(
        True,
        help="Checkpoint every round so that --resume can continue",
        default_text="(default: on)",
    )
    collapse_rounds: int = setting(
        3,
        ge=0,
        help="Stop a run whose model stays no better than untrained (loss above it, or "
        "accuracy at chance) this many rounds in a row; 0: never",
    )
    approval: ApprovalSpec | None = setting(
        None, cli=False, help="Approval hook asked before an Azure ML submission"
    )

    @field_validator("tracking_uri")
    @classmethod
    def _check_tracking_uri(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split(":", 1)[0].split("+", 1)[0] if ":" in value else ""
        if scheme == "file":
            raise ValueError(
                f"tracking URI {value!r} is a file store, which MLflow 3 refuses (maintenance "
                "mode) - use a SQLite store, e.g. sqlite:///runs/mlflow.db"
            )
        if scheme not in TRACKING_SCHEMES:
            raise ValueError(
                f"tracking URI {value!r} must start with one of "
                f"{', '.join(s + ':' for s in TRACKING_SCHEMES)} - e.g. sqlite:///runs/mlflow.db"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not RUN_NAME.fullmatch(value):
            raise ValueError(
                f"run name {value!r} must be 1-64 letters, digits, '.', '_' or '-' "
                "(it names a folder), e.g. mnist-cnn"
            )
        return value
