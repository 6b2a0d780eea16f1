"""Asynchronous rounds (FedBuff) on the local engine: the fold against hand-computed values,
what the job config refuses, a run's records, a killed worker, and resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import JobConfig
from fl_jobs.local.federation import run_federation
from fl_jobs.rounds.fedbuff import Buffered, fold, staleness_weight
from tests.fl.run_process import (
    assert_no_traceback,
    finish,
    only_run_dir,
    start_run,
    summary_of,
    wait_for_round,
    workers,
)


def test_staleness_weight_is_the_papers() -> None:
    assert staleness_weight(0) == 1.0
    assert staleness_weight(3) == 0.5
    assert staleness_weight(1) == pytest.approx(1 / math.sqrt(2))
    with pytest.raises(ValueError, match="staleness must be >= 0"):
        staleness_weight(-1)


def test_a_fold_takes_each_update_against_its_own_base_weighted_by_staleness() -> None:
    # Version 2 is current. silo-b trained from version 0 (staleness 2), silo-a from
    # version 2 (staleness 0); buffer M = 2. Worked by hand:
    #   delta = (1/2) * [ 1/sqrt(3) * (y_b - x_0) + 1 * (y_a - x_2) ]
    x0 = {"w": torch.tensor([0.0, 3.0]), "n": torch.tensor(5)}
    x2 = {"w": torch.tensor([1.0, 1.0]), "n": torch.tensor(7)}
    y_b = {"w": torch.tensor([3.0, 3.0]), "n": torch.tensor(9)}
    y_a = {"w": torch.tensor([2.0, 0.0]), "n": torch.tensor(9)}
    buffered = [Buffered("silo-b", y_b, 0), Buffered("silo-a", y_a, 2)]
    mean = fold(2, x2, buffered, {0: x0, 2: x2}, {"silo-a": 0, "silo-b": 1})
    s = 1 / math.sqrt(3)
    expected = torch.tensor([1.0 + 0.5 * (3 * s + 1), 1.0 + 0.5 * (0 * s - 1)])
    assert torch.allclose(mean.weights["w"], expected, atol=1e-7)
    assert mean.weights["n"].item() == 7  # a counter keeps the current model's value
    assert (mean.count, mean.total_weight) == (2, 2.0)
    # Silo order, not arrival order: the same buffer gives the same bits.
    again = fold(2, x2, buffered[::-1], {0: x0, 2: x2}, {"silo-a": 0, "silo-b": 1})
    assert torch.equal(again.weights["w"], mean.weights["w"])
    with pytest.raises(ValueError, match="after 2"):
        fold(2, x2, [Buffered("silo-a", y_a, 3)], {3: x2}, {"silo-a": 0})


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"async_buffer": 4}, "async_buffer 4 is more than the 3 silos"),
        ({"async_buffer": 0}, "greater than or equal to 1"),
        ({"async_buffer": 2, "strategy": "median"}, "cannot run strategy median"),
        ({"async_buffer": 2, "secure_aggregation": True}, "cannot be combined with --secure"),
        ({"async_buffer": 2, "fraction": 0.7}, "cannot be combined with --fraction"),
        ({"async_buffer": 2, "min_silos": 2}, "cannot be combined with --min-silos"),
        ({"async_buffer": 2, "screen_norms": True}, "cannot be combined with --screen-norms"),
        (
            {"async_buffer": 2, "dp_level": "silo", "dp_silo_clip": 1.0, "noise_multiplier": 1.0},
            "--dp-level silo",
        ),
    ],
)
def test_the_job_config_refuses_what_a_buffer_cannot_do(settings: dict, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        JobConfig(example="digits", silos=3, **settings)


def test_the_cli_says_what_is_wrong_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--silos",
            "3",
            "--async-buffer",
            "2",
            "--fraction",
            "0.5",
            "--output-dir",
            str(out),
        ],
    )
    assert result.exit_code != 0
    assert "async_buffer cannot be combined with --fraction" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_local_async_run_records_each_fold_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = JobConfig(
        example="digits",
        silos=4,
        rounds=4,
        async_buffer=2,
        seed=5,
        tracking=False,
        baselines=False,
        output_dir=out,
    )
    states = []
    result = run_federation(config, on_state=states.append)
    assert [r.round for r in result.history] == [1, 2, 3, 4]
    tasks: list[int] = []
    for record in result.history:
        info = record.asynchronous
        assert info is not None and info["buffer"] == 2
        assert sorted(record.selected) == sorted(info["updates"]) and len(record.selected) == 2
        for update in info["updates"].values():
            assert update["staleness"] == record.round - 1 - update["base"] >= 0
            assert update["task"] < info["next_task"]
            tasks.append(update["task"])
    assert len(tasks) == len(set(tasks))
    assert result.strategy == "FedAvg + FedBuff (M=2)"
    assert result.final_metrics["accuracy"] > 0.8
    # Only the current model and those in-flight tasks train from are kept while running.
    assert len(list((out / "models").glob("global_*.pt"))) <= 1 + 4

    resumed = run_federation(config.with_settings(rounds=6), resume=states[-1])
    assert [r.round for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    after = [u["task"] for r in resumed.history[4:] for u in r.asynchronous["updates"].values()]
    assert min(after) >= result.history[-1].asynchronous["next_task"]


def test_a_killed_worker_is_left_out_restarted_and_folded_again(tmp_path: Path) -> None:
    args = ["--example", "digits", "--silos", "3", "--rounds", "10", "--epochs", "2"]
    extra = ["--async-buffer", "2", "--round-timeout", "60", "--no-baselines", "--no-tracking"]
    process = start_run(tmp_path, *args, *extra)
    victim = workers(process, 3)[1]
    wait_for_round(process, tmp_path / "runs" / "latest", 2)
    victim.kill()
    result = finish(process)
    assert result.code == 0, result.stderr
    assert_no_traceback(result)
    history = summary_of(only_run_dir(tmp_path))["history"]
    faulty = [r for r in history if r.get("dropped")]
    assert len(faulty) == 1, history
    ((silo, reason),) = faulty[0]["dropped"].items()
    assert reason == "worker died (killed by SIGKILL)"
    assert f"{silo} left out (worker died (killed by SIGKILL))" in result.stdout
    assert any(silo in r["selected"] for r in history if r["round"] > faulty[0]["round"])
    assert history[-1]["round"] == 10


def test_silos_that_never_answer_stop_the_job_instead_of_spinning(tmp_path: Path) -> None:
    """Every task misses a deadline too short to train in: each silo is set aside after
    three tries, and the job stops with quorum lost (exit 3) instead of restarting workers
    forever. 500 local epochs take seconds, so no reply can be in a pipe when a 1 ms deadline
    is judged, however busy the machine."""
    args = ["--example", "digits", "--silos", "3", "--rounds", "5", "--async-buffer", "2"]
    args += ["--epochs", "500"]
    process = start_run(tmp_path, *args, "--round-timeout", "0.001", "--no-baselines")
    result = finish(process, timeout=120)
    assert result.code == 3, result.stderr
    assert_no_traceback(result)
    assert "only 1 silos can still contribute" in result.stderr or "only 0 silos" in result.stderr
    assert "left out 3 times in a row" in result.stderr
    assert "waits for the next fold before it is tried again" in result.stdout


def test_a_reply_that_arrived_while_the_orchestrator_folded_is_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The orchestrator's evaluation takes longer than the deadline: replies already in
    their pipes still count."""
    import time as clock

    import fl_jobs.rounds.async_engine as engine

    real = engine.evaluate

    def slow(*args: object, **kwargs: object) -> dict[str, float]:
        clock.sleep(1.5)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "evaluate", slow)
    config = JobConfig(
        example="digits",
        silos=3,
        rounds=3,
        epochs=1,
        async_buffer=2,
        round_timeout=1.0,
        tracking=False,
        baselines=False,
        output_dir=tmp_path / "run",
    )
    result = run_federation(config)
    assert [r.dropped for r in result.history] == [{}, {}, {}]
    assert {s for r in result.history for s in r.selected} == {"silo-0", "silo-1", "silo-2"}


def test_a_worker_that_fails_to_start_is_left_out_while_m_others_carry_the_folds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fl_jobs.local.worker_pool as pool

    real = pool.WorkerPool._await_ready
    failed: list[str] = []

    def flaky(self: pool.WorkerPool, worker: pool.SiloWorker) -> None:
        if worker.name == "silo-1" and not failed:
            failed.append(worker.name)
            raise pool.WorkerLost(worker.name, "did not get ready (injected)")
        real(self, worker)

    monkeypatch.setattr(pool.WorkerPool, "_await_ready", flaky)
    lines: list[str] = []
    config = JobConfig(
        example="digits",
        silos=4,
        rounds=4,
        epochs=1,
        async_buffer=2,
        tracking=False,
        baselines=False,
        output_dir=tmp_path / "run",
    )
    result = run_federation(config, notify=lines.append)
    assert failed == ["silo-1"] and len(result.history) == 4
    assert any("silo-1 did not get ready (injected)" in line for line in lines), lines
    assert any("silo-1" in r.selected for r in result.history[1:])  # restarted after a fold
