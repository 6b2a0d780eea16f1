"""``fl-sandbox cache prune`` deletes the silo data entries no run folder uses, keeps the
others, and runs after a prune (even ``--all``) rebuild what they need."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FL_SANDBOX_CACHE": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "fl_jobs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _run(cwd: Path, silos: int, out: str) -> None:
    done = _cli(
        cwd,
        *("run", "--example", "digits", "--silos", str(silos), "--rounds", "1"),
        *("--no-baselines", "--no-tracking", "--output-dir", out),
    )
    assert done.returncode == 0, done.stderr


def test_prune_keeps_what_runs_use(tmp_path: Path) -> None:
    entries = tmp_path / "cache" / "silo-data"
    _run(tmp_path, 3, "r1")
    _run(tmp_path, 2, "r2")
    assert len(list(entries.iterdir())) == 5
    shutil.rmtree(tmp_path / "r2")

    dry = _cli(tmp_path, "cache", "prune", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("would delete 2 entries")
    assert len(list(entries.iterdir())) == 5

    pruned = _cli(tmp_path, "cache", "prune")
    assert pruned.returncode == 0 and pruned.stdout.startswith("deleted 2 entries")
    assert "kept 3 still linked" in pruned.stdout
    assert len(list(entries.iterdir())) == 3
    for silo in (tmp_path / "r1" / "silos").iterdir():  # the run kept its data
        assert (silo / "arrays.npz").is_file()

    everything = _cli(tmp_path, "cache", "prune", "--all")
    assert everything.returncode == 0 and everything.stdout.startswith("deleted 3 entries")
    assert list(entries.iterdir()) == []
    _run(tmp_path, 2, "r3")  # rebuilt on demand
    assert len(list(entries.iterdir())) == 2
