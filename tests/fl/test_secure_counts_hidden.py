"""Secure aggregation hides each silo's sample count from the orchestrator, as Flower's
SecAgg+ does: the count is one more masked element of the silo's vector, so the orchestrator
unmasks the round's total and nothing per silo. Checked with the orchestrator's knowledge:
every message it receives from the real worker processes, its run folder (summary,
checkpoint, history) and its MLflow run read back with ``MlflowClient``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import JobConfig
from fl_jobs.core.model_io import load_weights
from fl_jobs.local.federation import run_federation
from fl_jobs.local.worker_pool import WorkerPool
from fl_jobs.secure_aggregation import MaskedUpdate

SETTINGS: dict[str, Any] = {
    "example": "digits",
    "epochs": 1,
    "rounds": 2,
    "silos": 4,
    "partition": "dirichlet:0.5",
    "baselines": False,
}


def numbers(value: Any) -> Iterator[float]:
    """Every number in a message, record or JSON document, at any depth."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(key)
            yield from numbers(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from numbers(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if not isinstance(item, (np.ndarray, torch.Tensor, bytes)):
                yield from numbers(item)
    elif isinstance(value, str):
        try:
            yield from numbers(json.loads(value))
        except ValueError:
            return


@pytest.fixture(scope="module")
def counts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Each silo's sample count, from a plain run's update files (unequal: Dirichlet)."""
    out = tmp_path_factory.mktemp("plain")
    config = JobConfig(**{**SETTINGS, "rounds": 1, "tracking": False, "output_dir": out / "run"})
    run_federation(config, keep_files=True)
    found = {
        path.stem: int(load_weights(path)[1]["n_samples"])
        for path in (out / "run" / "updates" / "round_0001").glob("*.pt")
    }
    assert len(found) == 4 and len(set(found.values())) == 4, found
    return found


def test_the_orchestrator_learns_the_total_count_and_no_silos(
    counts: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[Any] = []
    original = WorkerPool._recv

    def recording(self: WorkerPool, worker: Any) -> Any:
        message = original(self, worker)
        received.append(message)
        return message

    monkeypatch.setattr(WorkerPool, "_recv", recording)
    out = tmp_path / "secure"
    result = CliRunner().invoke(
        app,
        ["run", "--example", "digits", "--silos", "4", "--rounds", "2", "--epochs", "1",
         "--partition", "dirichlet:0.5", "--no-baselines", "--secure-aggregation",
         "--output-dir", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    hidden = {float(n) for n in counts.values()}
    assert float(sum(counts.values())) not in hidden
    assert not hidden & set(numbers(result.output.split()))

    # Every message the silos sent: no count, and the masked count element is not one.
    kinds = {type(m).__name__ for m in received}
    assert {"Ready", "TrainReply", "KeysReply", "SharesReply", "MaskedUpdate", "Reveal"} <= kinds
    for message in received:
        assert not hidden & set(numbers(message)), message
    masked = [m for m in received if isinstance(m, MaskedUpdate)]
    assert len(masked) == 2 * 4
    assert not hidden & {float(m.vector[-1]) for m in masked}

    # What the orchestrator keeps: every JSON file of the run folder (summary, checkpoint
    # state, job file) but the silos' own caches, and its MLflow run.
    kept = [p for p in out.rglob("*.json") if "silos" not in p.relative_to(out).parts]
    assert out / "summary.json" in kept
    for path in kept:
        assert not hidden & set(numbers(json.loads(path.read_text()))), path
    summary = json.loads((out / "summary.json").read_text())
    client = MlflowClient(tracking_uri=summary["artifacts"]["mlflow_tracking_uri"])
    run = client.get_run(summary["artifacts"]["mlflow_run_id"])
    assert not [k for k in run.data.metrics if k.endswith("_samples")], sorted(run.data.metrics)
    for key in run.data.metrics:
        values = {m.value for m in client.get_metric_history(run.info.run_id, key)}
        assert not hidden & values, key
    assert not hidden & set(numbers(run.data.params))


def _unmasked_totals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], float]]:
    """What the orchestrator unmasks each round: the cohort and its total weight."""
    from fl_jobs.local.pipes import PipesServer

    seen: list[tuple[list[str], float]] = []
    original = PipesServer.secure_round

    def recording(self: PipesServer, *args: Any, **kwargs: Any) -> Any:
        mean, info = original(self, *args, **kwargs)
        seen.append((list(args[1]), float(mean.total_weight)))
        return mean, info

    monkeypatch.setattr(PipesServer, "secure_round", recording)
    return seen


def _solve(seen: list[tuple[list[str], float]], silos: list[str]) -> dict[str, float]:
    """The orchestrator's attack: the silos whose weight its totals pin down (a unit vector in
    the span of the cohorts it saw), by least squares over every round."""
    rows = np.array([[1.0 if s in cohort else 0.0 for s in silos] for cohort, _ in seen])
    totals = np.array([total for _, total in seen])
    solution = np.linalg.pinv(rows) @ totals
    projector = np.linalg.pinv(rows) @ rows
    return {
        s: float(solution[j])
        for j, s in enumerate(silos)
        if np.allclose(projector[j], np.eye(len(silos))[j], atol=1e-9)
    }


@pytest.mark.parametrize("weights", ["samples", "equal"])
def test_cohorts_that_vary_give_counts_away_unless_weights_are_equal(
    counts: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights: str
) -> None:
    """Client sampling changes the cohort each round; each round's unmasked total is then one
    equation in the silos' counts, and enough of them solve it. With equal weights every
    silo's masked weight is 1, so the same attack learns only that each silo counts once."""
    seen = _unmasked_totals(monkeypatch)
    config = JobConfig(
        **{**SETTINGS, "rounds": 12, "fraction": 0.75, "secure_aggregation": True},
        secure_aggregation_weights=weights,
        tracking=False,
        output_dir=tmp_path / "run",
    )
    result = run_federation(config)
    assert len({frozenset(c) for c, _ in seen}) >= 3  # the cohorts did vary
    solved = _solve(seen, sorted(counts))
    assert solved  # the totals pin silos down...
    if weights == "samples":  # ...to their true sample counts
        assert all(round(v) == counts[s] for s, v in solved.items()), (solved, counts)
    else:  # ...to a weight of 1 each, which says nothing about their data
        assert all(round(v) == 1 for v in solved.values()), solved
        assert {t for _, t in seen} <= {3.0, 4.0}
    assert result.final_metrics["accuracy"] > 0.5
