"""Federation pays off on real data (no mocks of training): the issue's acceptance checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from fl_jobs.config import JobConfig
from fl_jobs.local.federation import run_federation
from fl_jobs.local.prepare import prepare_job
from fl_jobs.rounds.baselines import centralized, local_only, run_baselines


def test_digits_iid_federated_within_two_points_of_centralized(tmp_path: Path) -> None:
    config = JobConfig(
        example="digits", silos=5, rounds=20, partition="iid", output_dir=tmp_path, tracking=False
    )
    prepared = prepare_job(config)
    federated = run_federation(config, prepared=prepared).final_metrics["accuracy"]
    central = centralized(prepared).final_metrics["accuracy"]
    assert central > 0.95
    assert federated >= central - 0.02, (federated, central)


def test_digits_label_skew_federated_beats_local_only_by_five_points(tmp_path: Path) -> None:
    config = JobConfig(
        example="digits",
        silos=5,
        rounds=20,
        partition="dirichlet:0.3",
        output_dir=tmp_path,
        tracking=False,
    )
    prepared = prepare_job(config)
    federated = run_federation(config, prepared=prepared).final_metrics["accuracy"]
    curves = local_only(prepared)
    local_mean = sum(c.final_metrics["accuracy"] for c in curves) / len(curves)
    assert federated >= local_mean + 0.05, (federated, local_mean)


def test_turbofan_federated_rmse_beats_local_only_mean(shared_data: Path, tmp_path: Path) -> None:
    config = JobConfig(example="turbofan", silos=5, rounds=15, output_dir=tmp_path, tracking=False)
    prepared = prepare_job(config)
    federated = run_federation(config, prepared=prepared).final_metrics["rmse"]
    baselines = run_baselines(prepared)
    assert federated < baselines.local_mean(), (federated, baselines.local_mean())
    assert federated < 25.0  # far below the ~42-cycle RMSE of predicting the mean RUL


@pytest.mark.slow
def test_mnist_2nn_ten_iid_silos_reach_95_percent(shared_data: Path, tmp_path: Path) -> None:
    config = JobConfig(
        example="mnist",
        model="2nn",
        silos=10,
        rounds=5,
        partition="iid",
        output_dir=tmp_path,
        tracking=False,
    )
    result = run_federation(config)
    assert sum(result.silo_sizes) == 60000
    assert result.final_metrics["accuracy"] >= 0.95, result.final_metrics
