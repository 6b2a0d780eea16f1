"""Per-silo metrics policy (issue 17): with DP or secure aggregation the silos' train loss
stays in the silos by default; it reaches summary.json and MLflow only under ``clear``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from fl_jobs.cli import app

BASE = ["run", "--silos", "2", "--rounds", "1", "--epochs", "1", "--no-baselines"]


@pytest.mark.parametrize(
    ("extra", "policy"),
    [
        (["--clip-norm", "1"], "none"),
        (["--secure-aggregation"], "none"),
        (["--clip-norm", "1", "--silo-metrics", "clear"], "clear"),
        ([], "clear"),
    ],
)
def test_silo_metrics_follow_their_policy(extra: list[str], policy: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [*BASE, *extra, "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["silo_metrics"] == policy
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    logged = client.get_run(summary["artifacts"]["mlflow_run_id"]).data.metrics
    assert ("silo_silo-0_train_loss" in logged) == (policy == "clear")
    if "--clip-norm" in extra:  # the accounting still works from what is sent
        assert "silo_silo-0_epsilon" in logged
    assert "silo_silo-0_samples" in logged  # n is public (replace-one adjacency)


def test_an_unknown_policy_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [*BASE, "--silo-metrics", "dp", "--output-dir", str(out)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "silo_metrics" in result.stderr
    assert not out.exists()
