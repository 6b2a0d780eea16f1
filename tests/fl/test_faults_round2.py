"""Faults of the second trial (docs/fl-jobs.md, "Stopping and exit codes"), each injected
into a real ``python -m fl_jobs run`` process: waits that must speak, runs that must stop
like SIGTERM does, and models that must not be reported as finished."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import psutil

from tests.fl.run_process import Watched, assert_no_traceback, start_run, wait_for_round, workers

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
