"""Faults of the second trial (docs/fl-jobs.md, "Stopping and exit codes"), each injected
into a real ``python -m fl_jobs run`` process: waits that must speak, runs that must stop
like SIGTERM does, and models that must not be reported as finished."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil
import pytest

from tests.fl.run_process import (
    Watched,
    assert_no_traceback,
    only_run_dir,
    run_to_end,
    start_run,
    summary_of,
    wait_for_round,
    workers,
)

NOTICE_ENV = {"FL_SANDBOX_WAIT_NOTICE_S": "0.5"}


def test_secure_aggregation_says_which_silo_and_phase_it_waits_for(tmp_path: Path) -> None:
    """A silo that stops after its training reply used to hang the secure exchanges
    silently. Silo-2 is stopped first: the training wait names it alone, so the others have
    answered; then silo-0 is stopped and silo-2 continued, and the key exchange waits for
    silo-0 (or, if silo-2 had trained already, the exchange waits for silo-2)."""
    args = ["--example", "digits", "--silos", "3", "--rounds", "30", "--epochs", "1"]
    run = Watched(
        start_run(
            tmp_path,
            *args,
            "--secure-aggregation",
            "--no-baselines",
            "--no-tracking",
            env=NOTICE_ENV,
        )
    )
    silos = sorted(workers(run.process, 3), key=lambda p: p.pid)
    wait_for_round(run.process, tmp_path / "runs" / "latest", 1)
    silos[2].suspend()
    stopped = [silos[2]]
    try:
        first = run.wait_for_line("still waiting for silo-2 (process stopped)", timeout=120)
        if "secure aggregation" in run.out[first]:
            line = run.out[first]
        else:  # the others trained: stop silo-0 past its training reply, let silo-2 go on
            silos[0].suspend()
            stopped.append(silos[0])
            silos[2].resume()
            found = run.wait_for_line("still waiting for silo-0 (process stopped)", 120, first)
            line = run.out[found]
        phases = ("key exchange", "share exchange", "masked updates", "mask removal")
        assert any(
            f", secure aggregation ({phase}): still waiting for silo-" in line for phase in phases
        ), line
        assert "(set --round-timeout SECONDS to leave unresponsive silos out)" in line
    finally:
        for process in stopped:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()
    result = run.finish()
    assert result.code == 0, result.stderr
    assert_no_traceback(result)


def test_a_collapsed_model_stops_with_its_own_status_and_exit_code(tmp_path: Path) -> None:
    """``--lr 30`` on digits: the loss sits above the untrained model's and the accuracy at
    chance, which used to end as ``finished``, exit 0."""
    from mlflow.tracking import MlflowClient

    result = run_to_end(tmp_path, "--lr", "30", "--rounds", "6", "--no-baselines")
    assert result.code == 4, result.stderr
    assert_no_traceback(result)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "error: the model collapsed: the global model's test loss stayed above the untrained "
        "model's (2.32) in rounds 1-3 ("
    ), line
    assert line.endswith(
        "rounds 1-3 are kept in "
        + str(Path("runs", "digits", only_run_dir(tmp_path).name))
        + " - lower the learning rate, e.g. --lr 0.1 (this run used 30); or --collapse-rounds "
        "0 to train on regardless"
    ), line
    summary = summary_of(only_run_dir(tmp_path))
    assert summary["status"] == "collapsed" and summary["exit_code"] == 4
    assert summary["completed_rounds"] == 3 and summary["resume_command"] is None
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    assert client.get_run(summary["artifacts"]["mlflow_run_id"]).info.status == "FAILED"


def test_collapse_rounds_0_trains_on(tmp_path: Path) -> None:
    result = run_to_end(
        tmp_path,
        "--lr",
        "30",
        "--rounds",
        "4",
        "--no-baselines",
        "--no-tracking",
        "--collapse-rounds",
        "0",
    )
    assert result.code == 0, result.stderr
    assert summary_of(only_run_dir(tmp_path))["completed_rounds"] == 4


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (
            ["--server-lr", "1e6", "--server-momentum", "0.5"],
            "lower the server learning rate, e.g. --server-lr 1 (this run used 1e+06)",
        ),
        (
            ["--strategy", "fedadam", "--strategy-option", "eta=1e6"],
            "lower the server step, e.g. --strategy-option eta=0.01 (this run used 1e+06)",
        ),
        (
            ["--clip-norm", "1", "--target-epsilon", "4", "--rounds", "100000"],
            "raise --target-epsilon or lower --rounds (the noise was x",
        ),
    ],
    ids=["server-lr", "fedadam-eta", "dp-noise"],
)
def test_divergence_names_the_knob_that_caused_it(
    tmp_path: Path, args: list[str], fix: str
) -> None:
    """The client --lr was the default each time; it used to be blamed all the same."""
    result = run_to_end(tmp_path, "--rounds", "3", "--no-baselines", "--no-tracking", *args)
    assert result.code == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: training diverged in round "), line
    assert f" - {fix}" in line and "--lr" not in line, line
