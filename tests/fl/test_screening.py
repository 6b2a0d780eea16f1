"""Update screening: an invalid update or one far outside the round's norms is rejected with its
reason (console, summary, MLflow) and the round goes on while the quorum holds; below it the
job stops on the quorum-lost path.

A silo misbehaves by a patched ``train_local`` where silos train (``fl_jobs.silo.silo_round``):
the silo workers are forked from this process, so they run the patched function on their own
data, and their update files cross the same boundary as any silo's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import load_job_config
from fl_jobs.core.screening import norm_outliers, screen_norms
from fl_jobs.core.training import LocalUpdate
from fl_jobs.errors import QuorumLostError
from fl_jobs.local.federation import run_federation
from fl_jobs.silo import silo_round as worker  # where a silo trains


def test_norm_outliers_are_named_with_their_ratio() -> None:
    norms = {"silo-0": 1.0, "silo-1": 1.2, "silo-2": 0.9, "silo-3": 40.0}
    reasons = norm_outliers(norms, limit=10)
    assert list(reasons) == ["silo-3"]
    assert reasons["silo-3"] == "update norm 40 is 36.4x the round's median 1.1 (limit 10x)"
    assert norm_outliers({"a": 1.0, "b": 100.0}, limit=10) == {}  # two: neither is "outside"


def test_screen_norms_keeps_order_and_reports_before_yielding() -> None:
    base = {"w": torch.zeros(4)}
    updates = [
        LocalUpdate({"w": torch.full((4,), v)}, 1, silo=f"silo-{i}")
        for i, v in enumerate([1.0, 1.5, 90.0, 0.8, 0.001])
    ]
    rejected: list[str] = []
    kept = screen_norms(iter(updates), base, 10, lambda silo, why: rejected.append(silo))
    assert [u.silo for u in kept] == ["silo-0", "silo-1", "silo-3", "silo-4"]  # small: kept
    assert rejected == ["silo-2"]


def misbehave(silo: str, change: Callable[[torch.Tensor], torch.Tensor]) -> Callable[..., Any]:
    real = worker.train_local

    def train_local(*args: Any, **kwargs: Any) -> LocalUpdate:
        update = real(*args, **kwargs)
        if args[1].meta.get("silo") == silo:  # the worker's own SiloArrays
            update.weights = {
                k: change(v) if v.is_floating_point() else v for k, v in update.weights.items()
            }
        return update

    return train_local


def test_an_outlying_update_is_rejected_logged_and_the_round_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setattr(worker, "train_local", misbehave("silo-1", lambda t: t * 50))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["run", "--silos", "5", "--rounds", "2", "--epochs", "1", "--strategy", "median",
         "--min-silos", "4", "--no-baselines", "--output-dir", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "round 1: silo-1's update rejected (update norm " in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["strategy"] == {"name": "median"}
    for row in summary["history"]:
        ((silo, reason),) = row["rejected"].items()
        assert silo == "silo-1" and "x the round's median" in reason and "(limit 10x)" in reason
    assert summary["federated"]["accuracy"] > 0.5  # the four honest silos still train it
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    run = client.get_run(summary["artifacts"]["mlflow_run_id"])
    assert run.data.params["strategy"] == "median"
    history = client.get_metric_history(run.info.run_id, "silos_rejected")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 1.0)]
    assert run.data.tags["rejected.round_0001.silo-1"].startswith("update norm ")


def test_a_non_finite_update_below_quorum_stops_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "train_local", misbehave("silo-2", lambda t: t * float("nan")))
    config = load_job_config(
        None,
        {"silos": 3, "rounds": 2, "epochs": 1, "tracking": False, "baselines": False,
         "output_dir": tmp_path},
    )  # fmt: skip
    with pytest.raises(QuorumLostError) as info:
        run_federation(config)
    assert info.value.what.startswith("round 1 lost its quorum: at most 2 of 3 selected silos")
    assert "silo-2: update rejected, tensor '0.weight' holds " in info.value.what
    assert "non-finite values" in info.value.what
