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
