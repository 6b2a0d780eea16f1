"""The turbofan maintenance outcome: the policy arithmetic on hand-made fleets, and a real run
whose table, plot and summary agree with the policy recomputed from the run's exported model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fl_jobs.config import JobConfig
from fl_jobs.local.prepare import prepare_job
from fl_jobs.run.maintenance import (
    COSTS,
    THRESHOLD,
    best_interval,
    corrective,
    outcome,
    predictive_stops,
)
from fl_jobs.run.maintenance_report import test_fleet as load_fleet

REPO = Path(__file__).resolve().parents[2]


def test_outcome_counts_failures_and_wasted_cycles() -> None:
    life = np.array([100.0, 150.0, 200.0])
    result = outcome(np.array([90.0, 150.0, 120.0]), life)
    # engine 2 is stopped at its last cycle: it failed; the others waste 10 and 80 cycles
    assert (result.failures, result.planned, result.wasted_cycles) == (1, 2, 90.0)
    assert result.cost == pytest.approx(COSTS.failure + 2 * COSTS.planned + 90 * COSTS.wasted_cycle)
    assert corrective(life).failures == 3 and corrective(life).wasted_cycles == 0


def test_best_interval_trades_failures_against_waste() -> None:
    # nine engines live 200 cycles, one 100: failing the short one (10 + 9 planned = 19)
    # costs more than stopping all at 99 (10 planned + 910 wasted cycles / 200 = 14.55)
    lives = np.array([100.0] + [200.0] * 9)
    assert best_interval(lives) == 99
    assert best_interval(np.array([200.0] * 5)) == 199


def test_predictive_policy_stops_at_the_first_prediction_below_the_threshold() -> None:
    cycles = np.array([30.0, 31.0, 32.0, 30.0, 31.0])
    units = np.array([1, 1, 1, 2, 2])
    predicted = np.array([50.0, THRESHOLD - 1, 10.0, 80.0, 70.0])
    stops = predictive_stops(cycles, units, predicted, np.array([1, 2]))
    # engine 1 crosses at cycle 31; engine 2 never does: 31 + (70 - threshold) cycles
    assert stops.tolist() == [31.0, 31.0 + 70.0 - THRESHOLD]


def test_turbofan_run_reports_the_maintenance_outcome(shared_data: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "fl_jobs", "run", "--example", "turbofan", "--silos", "3"),
            *("--rounds", "8", "--no-tracking", "--output-dir", "out"),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "FL_SANDBOX_DATA": str(shared_data)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Maintenance of the 100 test engines" in done.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    policies = summary["maintenance"]["policies"]
    assert policies["corrective (run to failure)"]["failures"] == 100
    federated = policies["predictive, federated model"]
    assert federated["failures"] < 20 and federated["cost"] < 300
    assert len([p for p in policies if ": fixed, every" in p]) == 3
    assert len([p for p in policies if ": predictive, local-only" in p]) == 3
    assert (tmp_path / summary["artifacts"]["maintenance_plot"]).is_file()

    # The federated row again, from the run's own exported MLflow model.
    import mlflow.pyfunc
    import pandas as pd

    fleet = load_fleet(prepare_job(JobConfig(example="turbofan", silos=3)))
    model = mlflow.pyfunc.load_model(str(tmp_path / "out" / "model"))
    columns = [f"x{i}" for i in range(fleet.X.shape[1])]
    predicted = model.predict(pd.DataFrame(fleet.X.astype(np.float64), columns=columns))
    stops = predictive_stops(
        fleet.cycles, fleet.units, predicted["prediction"].to_numpy(), fleet.engine_ids
    )
    again = outcome(stops, fleet.life)
    assert again.failures == federated["failures"]
    assert again.wasted_cycles == pytest.approx(federated["wasted_cycles"], rel=1e-4)
