"""The local federation: reproducible, and the orchestrator never touches silo data."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from fl_jobs.config import JobConfig
from fl_jobs.errors import DivergenceError
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


@pytest.mark.parametrize(
    ("lr", "symptom"),
    [
        (1e30, "its training loss became nan"),  # NaN within the first batches
        (1e6, "its training loss reached"),  # finite but exploding: the old 10%-at-exit-0 run
    ],
)
def test_diverging_training_stops_naming_round_silo_and_a_learning_rate(
    tmp_path: Path, lr: float, symptom: str
) -> None:
    with pytest.raises(DivergenceError) as info:
        run_federation(digits_config(tmp_path, lr=lr, rounds=2))
    assert info.value.what.startswith("training diverged in round 1 at silo-")
    assert symptom in info.value.what
    assert info.value.fix == f"lower the learning rate, e.g. --lr 0.1 (this run used {lr:g})"


def test_history_and_artifacts(tmp_path: Path) -> None:
    records = []
    result = run_federation(digits_config(tmp_path), progress=records.append)
    assert [r.round for r in records] == [1, 2, 3] == [r.round for r in result.history]
    assert set(records[0].silo_metrics) == {"silo-0", "silo-1", "silo-2"}
    assert records[0].silo_metrics["silo-0"]["samples"] == result.silo_sizes[0]
    assert sum(result.silo_sizes) > 1400
    assert (tmp_path / "global_model.pt").is_file()
    assert not any((tmp_path / "updates").iterdir())  # round files are cleaned up
