"""Per-silo metrics policy (issue 17): with DP or secure aggregation the silos' train loss
stays in the silos by default; it reaches summary.json and MLflow only under ``clear``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import JobConfig
from fl_jobs.core.privacy import spent
from fl_jobs.core.silo_metrics import LOSS_BOUND, METRIC_NOISE_MULTIPLIER, noised_loss
from fl_jobs.local.prepare import prepare_job
from fl_jobs.silo.silo_ledger import read_ledger
from fl_jobs.silo.silo_store import local_silo_store

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
    # n is public under the DP adjacency (replace-one), but secure aggregation masks each
    # silo's count in its vector: only the round's total is unmasked.
    assert ("silo_silo-0_samples" in logged) == ("--secure-aggregation" not in extra)


@pytest.mark.parametrize(("policy", "needs"), [("loud", "silo_metrics"), ("dp", "--clip-norm")])
def test_an_unknown_policy_or_dp_without_dp_sgd_is_refused(
    policy: str, needs: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [*BASE, "--silo-metrics", policy, "--output-dir", str(out)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and needs in result.stderr
    assert not out.exists()


def test_dp_metrics_are_noised_and_counted_in_epsilon(tmp_path: Path) -> None:
    """Under ``dp`` the silo's train loss reaches summary.json and MLflow noised (not the
    running loss, not noise-free), and epsilon and the silo's ledger count the release."""
    out = tmp_path / "run"
    dp = ["--clip-norm", "1", "--noise-multiplier", "1", "--secure-aggregation"]
    result = CliRunner().invoke(app, [*BASE, *dp, "--silo-metrics", "dp", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["silo_metrics"] == "dp"
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    logged = client.get_run(summary["artifacts"]["mlflow_run_id"]).data.metrics
    assert logged["silo_silo-0_dp_metric_noise_multiplier"] == METRIC_NOISE_MULTIPLIER
    loss = logged["silo_silo-0_train_loss"]
    assert "silo_silo-0_samples" not in logged  # masked under secure aggregation
    config = JobConfig(example="digits", silos=2, rounds=1, epochs=1, output_dir=tmp_path / "x")
    n = prepare_job(config).silo_sizes()[0]  # silo-0's count, from its data
    # the silo's own clipped mean loss on the same model differs by the noise only
    noise_std = METRIC_NOISE_MULTIPLIER * LOSS_BOUND / n
    assert 0 - 6 * noise_std < loss < LOSS_BOUND + 6 * noise_std
    ledger = read_ledger(local_silo_store("silo-0"))
    assert [e.get("mechanism") for e in ledger] == [None, "silo-metric"]
    sgd = ledger[0]
    delta = summary["privacy"]["delta_per_silo"]["silo-0"]
    without = spent([(sgd["noise_multiplier"], sgd["sample_rate"], sgd["steps"])], delta)
    with_metric = spent(
        [
            (sgd["noise_multiplier"], sgd["sample_rate"], sgd["steps"]),
            (METRIC_NOISE_MULTIPLIER, 1.0, 1),
        ],
        delta,
    )
    assert summary["privacy"]["epsilon_per_silo"]["silo-0"] == pytest.approx(with_metric)
    assert with_metric > without
    assert logged["silo_silo-0_epsilon"] == pytest.approx(with_metric)


def test_the_released_loss_is_the_clipped_mean_plus_seeded_noise() -> None:
    """Same seed, same value; another seed, another; the mean is clipped to [0, B]."""
    import torch

    from fl_jobs.examples.registry import get_example

    example = get_example("digits")
    model = torch.nn.Linear(3, 2)
    X, y = torch.randn(50, 3) * 1e3, torch.randint(0, 2, (50,))  # losses far above B
    a = noised_loss(model, X, y, example, seed=1)["dp_train_loss"]
    assert a == noised_loss(model, X, y, example, seed=1)["dp_train_loss"]
    b = noised_loss(model, X, y, example, seed=2)["dp_train_loss"]
    assert a != b
    std = METRIC_NOISE_MULTIPLIER * LOSS_BOUND / len(X)
    assert abs(a - b) < 12 * std  # both around a clipped mean, not the raw one
    assert a < LOSS_BOUND + 6 * std
