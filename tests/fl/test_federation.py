"""The local federation: reproducible, and the orchestrator never touches silo data."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from fl_jobs.config import JobConfig
from fl_jobs.errors import ModelUpdateError
from fl_jobs.local.federation import run_federation

# Audit hooks cannot be removed: install one for the module and switch recording on/off.
_OPENED: list[tuple[int, str, str]] = []
_RECORDING: dict[str, Any] = {"on": False}
_PATH_EVENTS = {"open", "os.listdir", "os.scandir", "os.remove", "os.rename", "shutil.rmtree"}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING["on"] and event == "os.fork":
        _OPENED.append((os.getpid(), event, ""))
    if _RECORDING["on"] and event in _PATH_EVENTS and args:
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)):
            _OPENED.append((os.getpid(), event, os.fsdecode(path)))


sys.addaudithook(_audit)


def digits_config(tmp_path: Path, **extra: Any) -> JobConfig:
    settings: dict[str, Any] = {
        "example": "digits",
        "silos": 3,
        "rounds": 3,
        "partition": "dirichlet:0.5",
        "output_dir": tmp_path,
        "tracking": False,
        **extra,
    }
    return JobConfig(**settings)


def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path) -> None:
    a = run_federation(digits_config(tmp_path / "a", fraction=0.7, seed=11))
    b = run_federation(digits_config(tmp_path / "b", fraction=0.7, seed=11))
    c = run_federation(digits_config(tmp_path / "c", fraction=0.7, seed=12))
    assert [r.selected for r in a.history] == [r.selected for r in b.history]
    assert all(len(r.selected) == 2 for r in a.history)
    assert all(torch.equal(a.final_weights[k], b.final_weights[k]) for k in a.final_weights)
    assert not all(torch.equal(a.final_weights[k], c.final_weights[k]) for k in a.final_weights)
    assert a.final_metrics == b.final_metrics


def test_orchestrator_never_opens_silo_data(tmp_path: Path) -> None:
    config = digits_config(tmp_path, rounds=3)
    parent = os.getpid()
    _OPENED.clear()
    _RECORDING["on"] = True
    try:
        result = run_federation(config)
    finally:
        _RECORDING["on"] = False
    silos_root = (tmp_path / "silos").resolve()
    parent_paths = [Path(p).resolve() for pid, _, p in _OPENED if pid == parent]
    touched = [p for p in parent_paths if p.is_relative_to(silos_root) and p != silos_root]
    assert touched == [], f"the orchestrator accessed silo data: {touched}"
    # ... while it did read the model files the silos sent back (the probe works)
    assert any("updates" in p.parts for p in parent_paths)
    # one long-lived worker per silo: 3 forks for 3 silos x 3 rounds
    assert sum(1 for pid, event, _ in _OPENED if pid == parent and event == "os.fork") == 3
    # and every silo wrote and owns its data folder
    for name, size in zip(result.silo_names, result.silo_sizes, strict=True):
        assert (silos_root / name / "arrays.npz").is_file()
        assert size > 0


def test_diverging_silo_update_is_rejected_with_tensor_name(tmp_path: Path) -> None:
    with pytest.raises(ModelUpdateError, match=r"tensor '.*' holds \d+ non-finite values"):
        run_federation(digits_config(tmp_path, lr=1e30, rounds=2))


def test_history_and_artifacts(tmp_path: Path) -> None:
    records = []
    result = run_federation(digits_config(tmp_path), progress=records.append)
    assert [r.round for r in records] == [1, 2, 3] == [r.round for r in result.history]
    assert set(records[0].silo_metrics) == {"silo-0", "silo-1", "silo-2"}
    assert records[0].silo_metrics["silo-0"]["samples"] == result.silo_sizes[0]
    assert sum(result.silo_sizes) > 1400
    assert (tmp_path / "global_model.pt").is_file()
    assert not any((tmp_path / "updates").iterdir())  # round files are cleaned up


def test_workers_exit_when_the_orchestrator_is_killed(tmp_path: Path) -> None:
    """A SIGTERM'd orchestrator (no clean-up code runs) must not leave silo workers behind."""
    import contextlib
    import signal
    import subprocess
    import time

    import psutil

    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "fl_jobs", "run", "--example", "digits", "--silos", "3"]
    cmd += ["--rounds", "500", "--no-baselines", "--no-tracking", "--output-dir", str(tmp_path)]
    parent = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 3:
            time.sleep(0.2)
            workers = psutil.Process(parent.pid).children()
        assert len(workers) == 3, "the federation did not start its three workers"
        time.sleep(0.5)  # let them enter the round loop
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=10)
        _, alive = psutil.wait_procs(workers, timeout=20)
        assert alive == [], f"workers outlived the orchestrator: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
        for worker in workers:  # orphans are no longer our children: kill them by handle
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
