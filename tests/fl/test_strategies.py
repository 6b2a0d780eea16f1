"""Every strategy on known inputs, its state across a new object, and robustness to one
attacking silo."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from fl_jobs.config import load_job_config
from fl_jobs.core.training import LocalUpdate
from fl_jobs.rounds.job_parts import build_strategy
from fl_jobs.strategies import stacked
from fl_jobs.strategies.base import Strategy
from fl_jobs.strategies.fedadagrad import FedAdagrad
from fl_jobs.strategies.fedadam import FedAdam
from fl_jobs.strategies.fedavg import FedAvg
from fl_jobs.strategies.fedprox import FedProx
from fl_jobs.strategies.fedyogi import FedYogi
from fl_jobs.strategies.krum import Krum
from fl_jobs.strategies.median import Median
from fl_jobs.strategies.registry import STRATEGIES
from fl_jobs.strategies.trimmed_mean import TrimmedMean


def ups(*rows: tuple[list[float], int]) -> Iterator[LocalUpdate]:
    for i, (values, n) in enumerate(rows):
        yield LocalUpdate({"w": torch.tensor(values)}, n, silo=f"silo-{i}")


ZERO = {"w": torch.zeros(2)}


def test_fedprox_sends_mu_and_averages_like_fedavg() -> None:
    prox = FedProx(mu=0.25)
    assert prox.silo_config(3, "silo-1") == {"proximal_mu": 0.25}
    assert FedAvg().silo_config(3, "silo-1") == {}
    rows = (([1.0, 2.0], 1), ([4.0, 8.0], 3))
    assert torch.equal(
        prox.aggregate(1, ZERO, ups(*rows))["w"], FedAvg().aggregate(1, ZERO, ups(*rows))["w"]
    )


def adaptive_reference(
    rule: str, means: list[np.ndarray], eta: float, b1: float, b2: float, tau: float
) -> np.ndarray:
    """Reddi et al.'s Algorithm 2 in float64, written out independently."""
    x = np.zeros_like(means[0])
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for mean in means:
        d = mean - x
        m = b1 * m + (1 - b1) * d
        if rule == "adam":
            v = b2 * v + (1 - b2) * d * d
        elif rule == "yogi":
            v = v - (1 - b2) * d * d * np.sign(v - d * d)
        else:
            v = v + d * d
        x = x + eta * m / (np.sqrt(v) + tau)
    return x


@pytest.mark.parametrize(
    ("strategy", "rule"),
    [
        (FedAdam(eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3), "adam"),
        (FedYogi(eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3), "yogi"),
        (FedAdagrad(eta=0.1, beta_1=0.5, tau=1e-3), "adagrad"),
    ],
    ids=["fedadam", "fedyogi", "fedadagrad"],
)
def test_adaptive_server_optimizers_follow_the_paper(strategy: Strategy, rule: str) -> None:
    rounds = [([1.0, -2.0], [3.0, 0.0]), ([0.5, 1.0], [0.5, 1.0]), ([2.0, 2.0], [-1.0, 0.0])]
    weights = {"w": torch.zeros(2)}
    means = []
    for rnd, (a, b) in enumerate(rounds, start=1):
        weights = strategy.aggregate(rnd, weights, ups((a, 1), (b, 3)))
        means.append((np.array(a) * 1 + np.array(b) * 3) / 4)  # the weighted mean of the round
    beta_1, beta_2 = strategy.beta_1, strategy.beta_2  # type: ignore[attr-defined]
    expected = adaptive_reference(rule, means, 0.1, beta_1, beta_2, 1e-3)
    assert np.allclose(weights["w"].double().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_fedadam_first_step_by_hand() -> None:
    """Round 1 from x = 0 with mean 1: m = 0.1, v = 0.01, x = 0.1 * 0.1 / (0.1 + 0.001)."""
    new = FedAdam(eta=0.1, tau=1e-3).aggregate(1, {"w": torch.zeros(1)}, ups(([1.0], 5)))
    assert new["w"].item() == pytest.approx(0.1 * 0.1 / 0.101, rel=1e-6)
    corrected = FedAdam(eta=0.1, tau=1e-3, bias_correction=True)
    step = corrected.aggregate(1, {"w": torch.zeros(1)}, ups(([1.0], 5)))["w"].item()
    # bias-corrected: eta * sqrt(1 - 0.99) / (1 - 0.9) * m / (sqrt(v) + tau)
    assert step == pytest.approx(0.1 * 0.1 / 0.1 * 0.1 / 0.101, rel=1e-6)


@pytest.mark.parametrize("name", ["fedavg", "fedadam", "fedyogi", "fedadagrad"])
def test_state_dict_continues_identically_in_a_new_object(name: str) -> None:
    settings = {"server_momentum": 0.9, "server_lr": 0.5} if name == "fedavg" else {}
    config = load_job_config(None, {"strategy": name, **settings})
    steady = build_strategy(config)
    weights = {"w": torch.tensor([0.5, -0.5]), "count": torch.tensor(3)}

    def round_updates(rnd: int) -> Iterator[LocalUpdate]:
        for i in range(3):
            values = torch.tensor([rnd * 0.3 + i, -rnd + 0.1 * i])
            yield LocalUpdate({"w": values, "count": torch.tensor(3 + rnd)}, 10 + i)

    for rnd in (1, 2):
        weights = steady.aggregate(rnd, weights, round_updates(rnd))
    saved = steady.state_dict()
    assert saved and all(isinstance(t, torch.Tensor) for v in saved.values() for t in v.values())
    expected = steady.aggregate(3, weights, round_updates(3))
    restored = build_strategy(config)
    restored.load_state_dict(saved)
    got = restored.aggregate(3, weights, round_updates(3))
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert got["count"].item() == 6  # counters take the mean's value, as FedAvg
    with pytest.raises(ValueError, match="state"):
        restored.load_state_dict({"velocity": {"w": [1.0]}, "m": {}, "v": {}})


def test_median_odd_and_even() -> None:
    odd = Median().aggregate(1, ZERO, ups(([1.0, 9.0], 1), ([5.0, -1.0], 99), ([3.0, 2.0], 1)))
    assert odd["w"].tolist() == [3.0, 2.0]  # unweighted: 99 samples buy nothing
    even = Median().aggregate(
        1, ZERO, ups(([1.0, 0.0], 1), ([2.0, 0.0], 1), ([10.0, 4.0], 1), ([4.0, 8.0], 1))
    )
    assert even["w"].tolist() == [3.0, 2.0]  # mean of the two middle values


def test_trimmed_mean_cuts_beta_from_each_end() -> None:
    rows = [([float(v), 0.0], 1) for v in (1, 2, 3, 4, 100)]
    assert TrimmedMean(beta=0.2).aggregate(1, ZERO, ups(*rows))["w"].tolist() == [3.0, 0.0]
    assert TrimmedMean(beta=0.0).aggregate(1, ZERO, ups(*rows))["w"].tolist() == [22.0, 0.0]
    assert TrimmedMean(beta=0.1).aggregate(1, ZERO, ups(*rows))["w"].tolist() == [22.0, 0.0]
    with pytest.raises(ValueError, match="beta"):
        TrimmedMean(beta=0.5)


def test_krum_picks_the_most_central_update_and_multi_krum_averages() -> None:
    # Four points near the origin and one far away; f = 1: score = sum of 5 - 1 - 2 = 2 nearest.
    rows = [([0.0, 0.0], 1), ([1.0, 0.0], 1), ([0.0, 1.0], 3), ([1.0, 1.0], 1), ([50.0, 50.0], 1)]
    krum = Krum(f=1)
    assert krum.aggregate(1, ZERO, ups(*rows))["w"].tolist() == [0.0, 0.0]
    assert krum.last_chosen == ["silo-0"]
    # scores: silo-0 2, silo-1 2, silo-2 2, silo-3 2 (ties to the earlier), silo-4 far
    multi = Krum(f=1, m=3).aggregate(1, ZERO, ups(*rows))["w"]
    assert torch.allclose(multi, torch.tensor([1 / 5, 3 / 5]))  # weighted by samples 1, 1, 3
    assert Krum(f=1, m=3).title == "Multi-Krum"


def test_coordinatewise_rules_are_the_same_in_column_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gen = torch.Generator().manual_seed(0)
    rows = [
        LocalUpdate(
            {"a": torch.randn(70, 30, generator=gen), "b": torch.randn(5, generator=gen)}, 1
        )
        for _ in range(7)
    ]
    template = {"a": torch.zeros(70, 30), "b": torch.zeros(5)}
    whole = [s.aggregate(1, template, iter(rows)) for s in (Median(), TrimmedMean(beta=0.2))]
    monkeypatch.setattr(stacked, "CHUNK_BYTES", 1)  # one 1024-column slice at a time
    chunked = [s.aggregate(1, template, iter(rows)) for s in (Median(), TrimmedMean(beta=0.2))]
    for a, b in zip(whole, chunked, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    stacked_a = torch.stack([r.weights["a"] for r in rows])
    assert torch.allclose(whole[0]["a"], stacked_a.median(dim=0).values)  # odd K: true median


def honest_and_attack(attack: str) -> tuple[list[LocalUpdate], torch.Tensor]:
    """Nine honest silos near one direction d from the global model (0), one attacker."""
    gen = torch.Generator().manual_seed(7)
    d = torch.randn(1000, generator=gen)
    honest = [d + 0.02 * torch.randn(1000, generator=gen) for _ in range(9)]
    bad = 50 * d if attack == "scaled" else -d
    updates = [LocalUpdate({"w": w}, 100, silo=f"silo-{i}") for i, w in enumerate(honest)]
    updates.insert(4, LocalUpdate({"w": bad}, 100, silo="attacker"))
    return updates, torch.stack(honest).mean(dim=0)


@pytest.mark.parametrize("attack", ["scaled", "sign-flipped"])
def test_robust_strategies_keep_the_honest_mean_under_one_attacker(attack: str) -> None:
    updates, honest_mean = honest_and_attack(attack)

    def error(strategy: Strategy) -> float:
        out = strategy.aggregate(1, {"w": torch.zeros(1000)}, iter(updates))["w"]
        return float((out - honest_mean).norm() / honest_mean.norm())

    assert error(FedAvg()) > 0.15  # 0.2 for a sign flip, 5 for a 50x update
    for strategy in (Median(), TrimmedMean(beta=0.1), Krum(f=1), Krum(f=1, m=5)):
        assert error(strategy) < 0.05, strategy.name
    krum = Krum(f=1)
    krum.aggregate(1, {"w": torch.zeros(1000)}, iter(updates))
    assert krum.last_chosen != ["attacker"]


def test_every_registered_strategy_builds_from_a_job() -> None:
    for name, info in STRATEGIES.items():
        config = load_job_config(None, {"strategy": name, "silos": 5})
        strategy = build_strategy(config)
        assert strategy.name == name and strategy.robust == info.robust
        assert config.screens_norms() == info.robust
