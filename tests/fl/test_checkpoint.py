"""Strategy state and checkpoints: what a resumed run needs to continue bit-identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fl_jobs.core.training import LocalUpdate
from fl_jobs.errors import RunFolderError
from fl_jobs.local.federation import FederationState, RoundRecord
from fl_jobs.rounds.checkpoint import (
    CHECKPOINT_FILE,
    CheckpointWriter,
    load_checkpoint,
    save_checkpoint,
)
from fl_jobs.strategies.fedavg import FedAvg


def updates(value: float) -> list[LocalUpdate]:
    return [LocalUpdate({"w": torch.full((3,), value)}, n_samples=2)]


def test_strategy_state_round_trip_continues_identically() -> None:
    """Aggregate rounds 1-2, restore into a new FedAvg, run round 3: same as never stopping."""
    steady = FedAvg(server_momentum=0.9, server_lr=0.5)
    weights = {"w": torch.zeros(3)}
    for rnd, value in ((1, 1.0), (2, 2.0)):
        weights = steady.aggregate(rnd, weights, updates(value))
    saved = steady.state_dict()
    expected = steady.aggregate(3, weights, updates(3.0))
    restored = FedAvg(server_momentum=0.9, server_lr=0.5)
    restored.load_state_dict(saved)
    assert torch.equal(restored.aggregate(3, weights, updates(3.0))["w"], expected["w"])
    with pytest.raises(ValueError, match="velocity"):
        restored.load_state_dict({"velocity": {"w": [1.0]}})


def state(round: int) -> FederationState:
    rng = np.random.default_rng(7)
    rng.choice(10, 3)
    record = RoundRecord(1, ["silo-0"], {"accuracy": 0.5}, {"silo-0": {"samples": 3.0}}, 0.1)
    return FederationState(
        round=round,
        global_weights={"w": torch.arange(4.0)},
        strategy="fedavg",
        strategy_state=FedAvg(server_momentum=0.5).state_dict(),
        rng_state=rng.bit_generator.state,
        history=[record],
        initial_metrics={"accuracy": 0.1, "loss": 2.3},
    )


def test_checkpoint_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT_FILE
    save_checkpoint(path, state(1), settings={"seed": 3})
    save_checkpoint(path, state(2), settings={"seed": 3})
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]  # no temporary left
    loaded, settings = load_checkpoint(path)
    assert loaded.round == 2 and settings == {"seed": 3}
    assert torch.equal(loaded.global_weights["w"], torch.arange(4.0))
    assert loaded.history[0].dropped == {} and loaded.history[0].selected == ["silo-0"]
    rng = np.random.default_rng()
    rng.bit_generator.state = loaded.rng_state
    again = np.random.default_rng(7)
    again.choice(10, 3)
    assert rng.integers(1 << 60) == again.integers(1 << 60)


def test_a_damaged_checkpoint_is_named_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT_FILE
    save_checkpoint(path, state(1), settings={})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RunFolderError, match=r"checkpoint .* is unreadable .* - start a new run"):
        load_checkpoint(path)


def test_writer_ends_with_the_newest_state_and_reports_failures(tmp_path: Path) -> None:
    writer = CheckpointWriter(tmp_path / CHECKPOINT_FILE, lambda: {"seed": 1})
    for round in range(1, 6):
        writer.submit(state(round))
    writer.flush()
    loaded, settings = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert loaded.round == 5 and settings == {"seed": 1}

    broken = CheckpointWriter(tmp_path / "missing" / CHECKPOINT_FILE, dict)
    broken.submit(state(1))
    with pytest.raises(RuntimeError, match=r"could not be written: .*No such file"):
        broken.flush()
