"""Faults injected into real runs (``python -m fl_jobs run`` processes): killed and stopped
workers, a lost quorum, SIGTERM, SIGKILL and Ctrl-C of the orchestrator. In every case the
finished rounds are kept, the run says how to resume, a resume ends bit-identical to an
uninterrupted run, and no process prints a traceback."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import JobConfig
from fl_jobs.core.model_io import load_weights
from fl_jobs.local.federation import run_federation
from fl_jobs.rounds.checkpoint import CHECKPOINT_FILE, load_checkpoint
from tests.fl.run_process import (
    assert_no_traceback,
    finish,
    only_run_dir,
    start_run,
    summary_of,
    wait_for_round,
    workers,
)

# Short rounds (E=1) so that a signal sent after round 2 lands long before the last round.
FAST = ["--example", "digits", "--silos", "3", "--epochs", "1", "--no-baselines"]


def resume_here(run_dir: Path, *extra: str) -> Any:
    """Finish a stopped run in this process: a second process reading the first one's
    checkpoint, summary and lock (the subprocess start-up is what the tests would pay)."""
    result = CliRunner().invoke(app, ["run", "--resume", str(run_dir), *extra])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def clean_weights(tmp_path: Path, **settings: Any) -> dict[str, torch.Tensor]:
    """The final weights of the same job run start to end, in this process, with no fault."""
    config = JobConfig(
        example="digits",
        silos=3,
        epochs=settings.pop("epochs", 1),
        tracking=False,
        baselines=False,
        output_dir=tmp_path / "clean",
        **settings,
    )
    return run_federation(config).final_weights


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_killed_worker_is_left_out_restarted_and_rejoins(tmp_path: Path) -> None:
    args = ["--example", "digits", "--silos", "3", "--rounds", "12", "--epochs", "2"]
    process = start_run(tmp_path, *args, "--min-silos", "2", "--no-baselines", "--no-tracking")
    victim = workers(process, 3)[1]
    wait_for_round(process, tmp_path / "runs" / "latest", 2)
    victim.kill()
    result = finish(process)
    assert result.code == 0, result.stderr
    assert_no_traceback(result)
    summary = summary_of(only_run_dir(tmp_path))
    faulty = [r for r in summary["history"] if r.get("dropped")]
    assert len(faulty) == 1, summary["history"]
    ((silo, reason),) = faulty[0]["dropped"].items()
    assert reason == "worker died (killed by SIGKILL)"
    assert f"{silo} left out (worker died (killed by SIGKILL))" in result.stdout
    assert f"{silo} restarted; it rejoins in round {faulty[0]['round'] + 1}" in result.stdout
    later = [r for r in summary["history"] if r["round"] > faulty[0]["round"]]
    assert later and all(not r.get("dropped") and len(r["selected"]) == 3 for r in later)
    config = JobConfig(
        example="digits",
        silos=3,
        rounds=12,
        epochs=2,
        tracking=False,
        output_dir=tmp_path / "clean",
    )
    clean = run_federation(config).final_metrics["accuracy"]
    assert abs(summary["federated"]["accuracy"] - clean) <= 0.01


def test_stopped_worker_times_out_and_is_replaced(tmp_path: Path) -> None:
    process = start_run(
        tmp_path,
        *FAST,
        "--rounds",
        "12",
        "--min-silos",
        "2",
        "--round-timeout",
        "2",
        "--no-tracking",
    )
    victim = workers(process, 3)[0]
    wait_for_round(process, tmp_path / "runs" / "latest", 2)
    victim.suspend()  # SIGSTOP
    try:
        result = finish(process)
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()
    assert result.code == 0, result.stderr
    assert_no_traceback(result)
    summary = summary_of(only_run_dir(tmp_path))
    faulty = [r for r in summary["history"] if r.get("dropped")]
    assert len(faulty) == 1
    assert list(faulty[0]["dropped"].values()) == ["no answer within 2 s (process stopped)"]
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE
    assert summary["completed_rounds"] == 12


def test_below_quorum_stops_with_exit_3_and_resumes_bit_identical(tmp_path: Path) -> None:
    process = start_run(tmp_path, *FAST, "--rounds", "15", "--seed", "3", "--no-tracking")
    victim = workers(process, 3)[2]
    wait_for_round(process, tmp_path / "runs" / "latest", 2)
    victim.kill()
    result = finish(process)
    run_dir = only_run_dir(tmp_path)
    assert result.code == 3, result.stderr
    assert_no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: round ") and "lost its quorum" in lines[0]
    assert "min_silos is 3" in lines[0] and "worker died (killed by SIGKILL)" in lines[0]
    relative = Path("runs") / run_dir.parent.name / run_dir.name
    assert f"resume with: python -m fl_jobs run --resume {relative}" in lines[0]
    summary = summary_of(run_dir)
    kept = summary["completed_rounds"]
    assert summary["status"] == "quorum_lost" and summary["exit_code"] == 3
    assert 2 <= kept < 15 and f"rounds 1-{kept} are kept" in lines[0]
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "metric_per_round.png").is_file()
    _, meta = load_weights(run_dir / "global_model.pt")
    assert meta["rounds"] == kept

    resumed = resume_here(run_dir)
    assert f"resuming after round {kept}" in resumed.output
    final, _ = load_weights(run_dir / "global_model.pt")
    assert same(final, clean_weights(tmp_path, rounds=15, seed=3))
    assert summary_of(run_dir)["status"] == "finished"


def test_sigterm_then_resume_is_bit_identical_with_momentum_and_sampling(
    tmp_path: Path,
) -> None:
    """Server momentum (strategy state) and C < 1 (selection RNG) must both survive."""
    from mlflow.tracking import MlflowClient

    settings = ["--rounds", "15", "--fraction", "0.67", "--server-momentum", "0.9"]
    process = start_run(tmp_path, *FAST, *settings)
    run_dir = tmp_path / "runs" / "latest"
    silo_workers = workers(process, 3)
    wait_for_round(process, run_dir, 3)
    process.send_signal(signal.SIGTERM)  # the orchestrator only, as `kill` or a scheduler does
    stopped = finish(process, timeout=30)
    run_dir = run_dir.resolve()
    assert stopped.code == 143, stopped.stderr
    assert psutil.wait_procs(silo_workers, timeout=10)[1] == []  # it stopped its workers
    assert_no_traceback(stopped)
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1, stopped.stderr
    line = lines[0]
    assert line.startswith("stopped by SIGTERM after round ") and "resume with: " in line
    summary = summary_of(run_dir)
    assert summary["status"] == "interrupted" and summary["completed_rounds"] < 15
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    run_id = summary["artifacts"]["mlflow_run_id"]
    assert client.get_run(run_id).info.status == "KILLED"

    resume_here(run_dir)
    final, _ = load_weights(run_dir / "global_model.pt")
    expected = clean_weights(tmp_path, rounds=15, fraction=0.67, server_momentum=0.9)
    assert same(final, expected)
    # the same MLflow run continued, with every round logged once
    finished = summary_of(run_dir)
    assert finished["artifacts"]["mlflow_run_id"] == run_id
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert [r.info.run_id for r in client.search_runs(experiments)] == [run_id]
    assert client.get_run(run_id).info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "global_accuracy")]
    assert sorted(steps) == list(range(1, 16))


def test_ctrl_c_keeps_the_rounds_and_prints_the_resume_command(tmp_path: Path) -> None:
    process = start_run(tmp_path, *FAST, "--rounds", "20", "--no-tracking")
    run_dir = tmp_path / "runs" / "latest"
    wait_for_round(process, run_dir, 2)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    result = finish(process, timeout=30)
    assert result.code == 130, result.stderr
    assert_no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    run_dir = run_dir.resolve()
    relative = Path("runs") / run_dir.parent.name / run_dir.name
    assert line.startswith("stopped by Ctrl-C after round ")
    assert line.endswith(f"resume with: python -m fl_jobs run --resume {relative}")
    summary = summary_of(run_dir)
    assert summary["status"] == "interrupted" and summary["exit_code"] == 130
    assert summary["resume_command"] == f"python -m fl_jobs run --resume {relative}"
    assert len(summary["history"]) == summary["completed_rounds"] >= 2
    assert (run_dir / "metric_per_round.png").is_file()


def test_sigkilled_orchestrator_leaves_no_worker_and_a_resumable_run(tmp_path: Path) -> None:
    process = start_run(tmp_path, *FAST, "--rounds", "20", "--no-tracking")
    run_dir = tmp_path / "runs" / "latest"
    silo_workers = workers(process, 3)
    wait_for_round(process, run_dir, 2)
    process.kill()
    result = finish(process, timeout=30)  # returns once every worker closed the pipes too
    assert result.code == -signal.SIGKILL
    assert_no_traceback(result)
    _, alive = psutil.wait_procs(silo_workers, timeout=20)
    assert alive == [], f"workers outlived the orchestrator: {[p.pid for p in alive]}"
    resume_here(run_dir.resolve(), "--rounds", "20")  # the lock died with the process
    assert summary_of(run_dir.resolve())["completed_rounds"] == 20


def test_ctrl_c_before_the_first_round_keeps_a_consistent_folder(tmp_path: Path) -> None:
    """Ctrl-C at a state, not at a moment: the workers are stopped as soon as they exist, so
    no further round can finish whatever the load (a digits round takes ~30 ms, so one may
    already be done); the terminal's SIGINT then reaches the whole process group (the stopped
    workers see it once continued). The folder keeps exactly the rounds the run reported."""
    process = start_run(tmp_path, *FAST, "--rounds", "5", "--no-tracking")
    silos = workers(process, 3)  # the orchestrator is up and has forked its workers
    for worker in silos:
        worker.suspend()
    os.killpg(process.pid, signal.SIGINT)
    os.killpg(process.pid, signal.SIGCONT)
    result = finish(process, timeout=30)
    assert result.code == 130, result.stderr
    assert_no_traceback(result)
    run_dir = only_run_dir(tmp_path)
    summary = summary_of(run_dir)
    reported = result.stdout.count("/5  test accuracy")
    assert summary["status"] == "interrupted"
    # The folder is consistent with itself: the summary's rounds are the checkpoint's. A round
    # whose checkpoint landed just before the signal may not have printed its line yet.
    kept = summary["completed_rounds"]
    if kept:
        assert load_checkpoint(run_dir / CHECKPOINT_FILE)[0].round == kept
    assert reported <= kept <= reported + 1
    resume_here(run_dir)
    assert summary_of(run_dir)["completed_rounds"] == 5


def test_without_a_timeout_a_round_says_which_silo_it_waits_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --round-timeout: a stopped worker is named (and said to be stopped) while the
    round waits for it; once it continues, the round completes with every silo."""
    from fl_jobs.local import worker_pool

    monkeypatch.setattr(worker_pool, "WAIT_NOTICE_S", 0.5)
    stopped: list[psutil.Process] = []
    notes: list[str] = []

    def progress(record: Any) -> None:
        if record.round == 1:
            stopped.append(psutil.Process().children()[1])  # silo-1's worker
            stopped[0].suspend()

    def notify(line: str) -> None:
        notes.append(line)
        if "still waiting" in line and stopped:
            stopped[0].resume()

    config = JobConfig(
        example="digits", silos=3, rounds=2, epochs=1, tracking=False, output_dir=tmp_path
    )
    result = run_federation(config, progress=progress, notify=notify)
    assert notes and notes[0].startswith("round 2: still waiting for silo-1 (process stopped)")
    assert "set --round-timeout SECONDS to leave unresponsive silos out" in notes[0]
    assert result.history[1].selected == ["silo-0", "silo-1", "silo-2"]
    assert not result.history[1].dropped
