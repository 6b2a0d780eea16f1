"""Silo-level DP (DP-FedAvg, fl_jobs.silo.silo_dp): epsilon is Opacus's RDP accountant, every
silo's contribution is clipped as the orchestrator sees it, distributed noise sums to the
full variance, bad settings are refused, and a resumed run is bit-identical."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.config import JobConfig
from fl_jobs.core.model_io import load_weights
from fl_jobs.local.federation import FederationResult, run_federation
from fl_jobs.silo import silo_dp
from fl_jobs.silo.silo_secret import SECRET_RECORD
from fl_jobs.silo.silo_store import local_silo_store

COMMON: dict[str, Any] = {
    "example": "digits",
    "epochs": 1,
    "tracking": False,
    "baselines": False,
    "dp_level": "silo",
}


def run(tmp_path: Path, name: str, **settings: Any) -> FederationResult:
    config = JobConfig(**{**COMMON, **settings, "output_dir": tmp_path / name})
    return run_federation(config, keep_files=True)


def opacus_epsilon(sigma: float, rate: float, rounds: int, delta: float) -> float:
    """Opacus's own RDPAccountant, stepped once per round."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    for _ in range(rounds):
        accountant.step(noise_multiplier=sigma, sample_rate=rate)
    return float(accountant.get_epsilon(delta))


@pytest.mark.parametrize(
    ("sigma", "rate", "rounds", "delta"),
    [(1.0, 1.0, 20, 1e-5), (0.8, 0.5, 50, 1e-5), (1.3, 0.1, 100, 1e-6), (4.0, 0.2, 7, 1e-3)],
)
def test_epsilon_equals_opacus_rdp_accountant(
    sigma: float, rate: float, rounds: int, delta: float
) -> None:
    ours = silo_dp.epsilon(sigma, rate, rounds, delta)
    assert ours == pytest.approx(opacus_epsilon(sigma, rate, rounds, delta), rel=1e-12)


def test_target_epsilon_noise_spends_at_most_the_target() -> None:
    config = JobConfig(
        example="digits", silos=20, fraction=0.5, rounds=30, dp_level="silo", dp_silo_clip=1.0,
        target_epsilon=4.0,
    )  # fmt: skip
    sigma = silo_dp.noise_multiplier(config)
    spent = opacus_epsilon(sigma, 0.5, 30, 1e-5)
    assert spent <= 4.0
    assert spent > 3.9  # the smallest such noise, not just any
    assert silo_dp.summary(config, 30)["epsilon"] == pytest.approx(spent, rel=1e-12)


def test_run_reports_mode_and_opacus_epsilon_per_round(tmp_path: Path) -> None:
    result = run(tmp_path, "a", silos=6, rounds=3, dp_silo_clip=0.5, noise_multiplier=1.2)
    for record in result.history:
        assert record.silo_dp is not None
        assert record.silo_dp["mode"] == "orchestrator"
        assert record.silo_dp["epsilon"] == pytest.approx(
            opacus_epsilon(1.2, 1.0, record.round, 1e-5), rel=1e-12
        )


def test_each_silos_contribution_is_clipped_as_the_orchestrator_sees_it(tmp_path: Path) -> None:
    """The update files the orchestrator reads: each delta from the round's global model is
    at most C, and clipping really acted (training moves digits' weights further)."""
    clip = 0.05
    run(tmp_path, "a", silos=5, rounds=2, dp_silo_clip=clip, noise_multiplier=1.0, lr=0.1)
    out = tmp_path / "a"
    norms = []
    for rnd in (1, 2):
        base, _ = load_weights(out / "models" / f"global_{rnd:04d}.pt")
        files = sorted((out / "updates" / f"round_{rnd:04d}").glob("*.pt"))
        assert len(files) == 5
        for path in files:
            weights, meta = load_weights(path)
            assert meta["n_samples"] == 1  # uniform weight: the sample count stays home
            norms.append(silo_dp.delta_norm(weights, base))
    assert max(norms) <= clip * (1 + 1e-5)
    assert min(norms) > clip * 0.99


def test_an_update_beyond_the_clip_is_rejected(tmp_path: Path) -> None:
    config = JobConfig(**COMMON, silos=5, dp_silo_clip=1.0, output_dir=tmp_path)
    aggregator = silo_dp.SiloDPAggregator(config, tmp_path)
    base = {"w": torch.zeros(4)}
    from fl_jobs.core.training import LocalUpdate

    updates = [LocalUpdate({"w": torch.full((4,), 0.1)}, 1, silo=f"s{i}") for i in range(5)]
    updates.append(LocalUpdate({"w": torch.full((4,), 1.0)}, 1, silo="big"))  # norm 2
    rejected: dict[str, str] = {}
    mean = aggregator.mean_of_updates(1, base, updates, rejected.__setitem__)
    assert list(rejected) == ["big"] and "exceeds --dp-silo-clip" in rejected["big"]
    assert mean.count == 5


def _fixed_secrets(silos: int) -> None:
    """Known silo secrets, so that the statistical test below is deterministic."""
    for i in range(silos):
        store = local_silo_store(f"silo-{i}")
        assert store.create(SECRET_RECORD, bytes([i + 1]) * 32)


def test_distributed_noise_in_the_unmasked_sum_has_the_full_variance(tmp_path: Path) -> None:
    """Same seeds, same training, with and without noise: the difference of the two
    global models times the cohort is the sum of the silos' noise shares, which must be
    N(0, sigma^2 C^2): each silo added N(0, sigma^2 C^2 / k), k = 5 silos."""
    _fixed_secrets(5)
    settings = {"silos": 5, "rounds": 1, "dp_silo_clip": 0.5, "secure_aggregation": True,
                "dp_silo_noise": "distributed"}  # fmt: skip
    noisy = run(tmp_path, "noisy", **settings, noise_multiplier=2.0).final_weights
    clean = run(tmp_path, "clean", **settings, noise_multiplier=0.0).final_weights
    noise = torch.cat([(noisy[k].double() - clean[k].double()).flatten() * 5 for k in noisy])
    n = noise.numel()
    assert n > 2000
    target = (2.0 * 0.5) ** 2
    # sample variance of n normals: relative standard error sqrt(2/n) (< 3.2 % here)
    assert abs(float(noise.var()) / target - 1) < 5 * math.sqrt(2 / n)
    assert abs(float(noise.mean())) < 5 * math.sqrt(target / n)


def test_orchestrator_noise_has_the_full_variance(tmp_path: Path) -> None:
    config = JobConfig(**COMMON, silos=5, dp_silo_clip=0.5, noise_multiplier=2.0,
                       output_dir=tmp_path)  # fmt: skip
    aggregator = silo_dp.SiloDPAggregator(config, tmp_path)
    base = {"w": torch.zeros(20000)}
    total = {"w": torch.zeros(20000, dtype=torch.float64)}
    mean = aggregator._noisy_mean(1, base, total, 5)
    noise = mean.weights["w"].double() * 5
    assert abs(float(noise.var()) / 1.0 - 1) < 5 * math.sqrt(2 / 20000)


def test_distributed_run_stops_rather_than_release_less_noise(tmp_path: Path) -> None:
    """The unmasked sum must hold k noise shares: a round with fewer is refused."""
    from fl_jobs.errors import QuorumLostError
    from fl_jobs.strategies.base import WeightedMean

    config = JobConfig(**COMMON, silos=6, min_silos=5, dp_silo_clip=1.0,
                       secure_aggregation=True, dp_silo_noise="distributed",
                       output_dir=tmp_path)  # fmt: skip
    aggregator = silo_dp.SiloDPAggregator(config, tmp_path)
    base = {"w": torch.zeros(3)}
    with pytest.raises(QuorumLostError, match="at least 5 silos"):
        aggregator.mean_of_secure(1, base, WeightedMean({"w": torch.zeros(3)}, 4.0, 4))
    assert aggregator.mean_of_secure(1, base, WeightedMean(base, 5.0, 5)).count == 5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"silos": 10, "dp_level": "silo"}, "silo-level DP needs dp_silo_clip"),
        ({"silos": 10, "dp_silo_clip": 1.0}, "add --dp-level silo"),
        ({"silos": 4, "dp_level": "silo", "dp_silo_clip": 1.0}, "at least 5 silos"),
        ({"silos": 10, "dp_level": "silo", "dp_silo_clip": 1.0, "dp_silo_noise": "distributed"},
         "needs the orchestrator to see only their sum - add --secure-aggregation"),
        ({"silos": 10, "dp_level": "silo", "dp_silo_clip": 1.0, "clip_norm": 1.0},
         "one mode at a time"),
        ({"silos": 10, "dp_level": "silo", "dp_silo_clip": 1.0, "strategy": {"name": "krum"}},
         "cannot use strategy krum"),
        ({"silos": 10, "dp_level": "silo", "dp_silo_clip": 1.0, "screen_norms": True},
         "screen_norms cannot run with silo-level DP"),
        ({"silos": 10, "dp_level": "silo", "dp_silo_clip": 1.0, "target_delta": 0.1},
         "leaking one silo at random"),
        ({"silos": 10, "dp_level": "silo", "dp_silo_clip": 1.0, "target_epsilon": 1e-6},
         "cannot be met"),
        ({"silos": 10, "fraction": 0.1, "dp_level": "silo", "dp_silo_clip": 1.0},
         "at least 2 silos a round"),
    ],
)  # fmt: skip
def test_settings_silo_dp_cannot_run_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobConfig(example="digits", **settings)


def test_cli_refuses_with_one_error_line_before_creating_anything(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["run", "--example", "digits", "--silos", "10", "--dp-level", "silo",
         "--dp-silo-clip", "1", "--dp-silo-noise", "distributed", "--output-dir", str(out),
         "--no-baselines", "--no-tracking"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "error: " in result.output and "add --secure-aggregation" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("mode", ["orchestrator", "distributed"])
def test_resumed_run_is_bit_identical(tmp_path: Path, mode: str) -> None:
    args = ["--example", "digits", "--silos", "5", "--epochs", "1", "--dp-level", "silo",
            "--dp-silo-clip", "0.5", "--noise-multiplier", "0.7", "--dp-silo-noise", mode,
            "--server-momentum", "0.9", "--no-baselines", "--no-tracking"]  # fmt: skip
    if mode == "distributed":
        args.append("--secure-aggregation")
    out = tmp_path / "run"
    first = CliRunner().invoke(app, ["run", *args, "--rounds", "2", "--output-dir", str(out)])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out), "--rounds", "3"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after round 2" in resumed.output
    final, _ = load_weights(out / "global_model.pt")
    clean_dir = tmp_path / "clean"
    if mode == "orchestrator":  # the same trusted aggregator: the run's noise secret
        clean_dir.mkdir()
        shutil.copy(out / silo_dp.ORCHESTRATOR_SECRET, clean_dir / silo_dp.ORCHESTRATOR_SECRET)
    expected = run(
        tmp_path, "clean", silos=5, rounds=3, dp_silo_clip=0.5, noise_multiplier=0.7,
        dp_silo_noise=mode, server_momentum=0.9, secure_aggregation=mode == "distributed",
    ).final_weights  # fmt: skip
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["silo_dp"]["mode"] == mode
    assert summary["silo_dp"]["adjacency"] == "add/remove one silo"
    assert summary["silo_dp"]["epsilon"] == pytest.approx(opacus_epsilon(0.7, 1.0, 3, 1e-5))
    assert summary["history"][-1]["silo_dp"]["epsilon"] == summary["silo_dp"]["epsilon"]


def test_a_different_run_secret_gives_different_noise(tmp_path: Path) -> None:
    """The orchestrator's noise is not a function of the job seed (which summary.json
    shows): two run folders with the same settings draw different noise."""
    a = run(tmp_path, "a", silos=5, rounds=1, dp_silo_clip=0.5, noise_multiplier=1.0)
    b = run(tmp_path, "b", silos=5, rounds=1, dp_silo_clip=0.5, noise_multiplier=1.0)
    assert any(not torch.equal(a.final_weights[k], b.final_weights[k]) for k in a.final_weights)


def test_mlflow_records_the_silo_dp_epsilon(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["run", "--example", "digits", "--silos", "5", "--rounds", "2", "--epochs", "1",
         "--dp-level", "silo", "--dp-silo-clip", "0.5", "--no-baselines",
         "--output-dir", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tracking = json.loads((out / "tracking.json").read_text())
    client = MlflowClient(tracking["tracking_uri"])
    history = client.get_metric_history(tracking["run_id"], "silo_dp_epsilon")
    assert [m.step for m in history] == [1, 2]
    assert history[-1].value == pytest.approx(opacus_epsilon(1.0, 1.0, 2, 1e-5))
    params = client.get_run(tracking["run_id"]).data.params
    assert params.get("dp_level") == "silo"


def test_a_distributed_round_with_a_dropout_holds_k_shares_or_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A silo dies in training: with --min-silos 4 of 5 (each silo adds a quarter of the
    variance) the round goes on over 4 shares; at the default quorum (all 5) it stops."""
    from fl_jobs.errors import QuorumLostError
    from tests.fl.test_secure_federation import kill_in_training

    kill_in_training(monkeypatch, {"silo-2"}, rnd=1)
    settings = {"silos": 5, "rounds": 1, "dp_silo_clip": 0.5, "noise_multiplier": 1.0,
                "secure_aggregation": True, "dp_silo_noise": "distributed"}  # fmt: skip
    result = run(tmp_path, "tolerant", **settings, min_silos=4)
    (record,) = result.history
    assert "silo-2" in record.dropped
    assert record.secure_aggregation is not None
    assert record.secure_aggregation["contributors"] == 4
    assert record.silo_dp is not None and record.silo_dp["mode"] == "distributed"
    with pytest.raises(QuorumLostError):
        run(tmp_path, "strict", **settings)
