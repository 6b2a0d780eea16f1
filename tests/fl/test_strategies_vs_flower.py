"""Every strategy Flower also has gives Flower's result on the same updates, over three rounds
(so the state of the server optimisers is compared too). Flower runs in its own environment
(``.venv-flwr``, see benchmarks/flower_runtime.py); without it the test is skipped."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.flower_runtime import REPO_ROOT, flower_env, flower_python
from fl_jobs.core.training import LocalUpdate
from fl_jobs.strategies.base import Strategy
from fl_jobs.strategies.fedadagrad import FedAdagrad
from fl_jobs.strategies.fedadam import FedAdam
from fl_jobs.strategies.fedavg import FedAvg
from fl_jobs.strategies.fedprox import FedProx
from fl_jobs.strategies.fedyogi import FedYogi
from fl_jobs.strategies.krum import Krum
from fl_jobs.strategies.median import Median
from fl_jobs.strategies.trimmed_mean import TrimmedMean

ROUNDS, UPDATES = 3, 5
KEYS = {"layer.weight": (4, 3), "layer.bias": (3,)}

#: The same settings as benchmarks/flower_strategies.py's SETTINGS, strategy by strategy.
OURS = {
    "fedavg": lambda: FedAvg(),
    "fedavgm": lambda: FedAvg(server_lr=0.5, server_momentum=0.9),
    "fedprox": lambda: FedProx(mu=0.1),
    "fedadam": lambda: FedAdam(eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3, bias_correction=True),
    "fedyogi": lambda: FedYogi(eta=0.05, beta_1=0.9, beta_2=0.99, tau=1e-3),
    "fedadagrad": lambda: FedAdagrad(eta=0.1, tau=1e-3),
    "median": lambda: Median(),
    "trimmed_mean": lambda: TrimmedMean(beta=0.2),
    "krum": lambda: Krum(f=1),
    "multikrum": lambda: Krum(f=1, m=3),
}
#: Selections are exact; arithmetic differs in rounding only (Flower's FedAdam even switches
#: to float64 after its first round).
EXACT = {"median", "krum"}


def write_updates(path: Path) -> tuple[dict[str, torch.Tensor], list[list[LocalUpdate]]]:
    rng = np.random.default_rng(3)
    initial = {k: rng.normal(size=s).astype(np.float32) for k, s in KEYS.items()}
    samples = rng.integers(10, 200, size=(ROUNDS, UPDATES))
    arrays = {f"initial_{j}": a for j, a in enumerate(initial.values())}
    rounds = []
    for r in range(ROUNDS):
        updates = []
        for i in range(UPDATES):
            update = {
                k: (a + rng.normal(size=a.shape)).astype(np.float32) for k, a in initial.items()
            }
            arrays |= {f"round{r}_update{i}_{j}": a for j, a in enumerate(update.values())}
            tensors = {k: torch.from_numpy(a) for k, a in update.items()}
            updates.append(LocalUpdate(tensors, int(samples[r, i]), silo=f"silo-{i}"))
        rounds.append(updates)
    np.savez(path, samples=samples, **arrays)
    return {k: torch.from_numpy(a) for k, a in initial.items()}, rounds


@pytest.mark.skipif(
    flower_python() is None, reason="Flower environment absent (bash benchmarks/flower_env.sh)"
)
def test_strategies_equal_flowers_on_the_same_updates(tmp_path: Path) -> None:
    initial, rounds = write_updates(tmp_path / "updates.npz")
    done = subprocess.run(
        [
            str(flower_python()),
            "-m",
            "benchmarks.flower_strategies",
            "--updates",
            str(tmp_path / "updates.npz"),
            "--out",
            str(tmp_path / "flower.npz"),
        ],
        cwd=REPO_ROOT,
        env=flower_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    flower = np.load(tmp_path / "flower.npz")

    def rounds_of(strategy: Strategy) -> Iterator[dict[str, torch.Tensor]]:
        weights = dict(initial)
        for r, updates in enumerate(rounds, start=1):
            weights = strategy.aggregate(r, weights, iter(updates))
            yield weights

    for name, make in OURS.items():
        for r, ours in enumerate(rounds_of(make()), start=1):
            for j, key in enumerate(KEYS):
                theirs = flower[f"{name}_round{r}_{j}"]
                got = ours[key].numpy()
                where = f"{name} round {r} {key}"
                if name in EXACT:
                    assert np.array_equal(got, theirs), where
                else:
                    assert np.allclose(got, theirs, rtol=1e-5, atol=1e-6), where
