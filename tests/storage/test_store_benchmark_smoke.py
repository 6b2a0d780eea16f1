"""The store transport benchmark runs end to end at smoke size and writes a valid report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.report import load_report
from tests.azurite import REPO_ROOT


def test_store_transport_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "store_transport.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.store_transport", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = load_report(out)
    [table] = report.tables
    assert [row[0] for row in table.rows] == ["store (Azurite)", "local pipes"]
    store_row = table.rows[0]
    assert store_row[4] > 0 and store_row[5] > 0  # requests and bytes were counted


def test_async_rounds_benchmark_smoke(tmp_path: Path) -> None:
    """Both modes run with real agents over Azurite, a silo throttled, and the report holds
    one row per mode with its rounds and the slow silo's share of them."""
    out = tmp_path / "async_rounds.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.async_rounds", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = load_report(out)
    [table] = report.tables
    assert [row[0] for row in table.rows] == ["synchronous", "asynchronous (M=1)"]
    assert [row[1] for row in table.rows] == [1, 2]  # rounds run in each mode
    assert table.rows[0][6] == 1.0  # a synchronous round always waits for the slow silo
