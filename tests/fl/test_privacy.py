"""Optional DP-SGD: clipping really bounds each step, runs stay reproducible, epsilon is
accounted per silo."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fl_jobs.config import JobConfig
from fl_jobs.core.privacy import epsilon
from fl_jobs.core.silo_data import SiloArrays
from fl_jobs.core.training import TrainParams, train_local
from fl_jobs.examples.registry import get_example
from fl_jobs.local.federation import run_federation


def digits_silo() -> tuple[SiloArrays, object]:
    example = get_example("digits")
    ds = example.load(JobConfig(example="digits").example, 0)
    return SiloArrays(X=ds.X[:300], y=ds.y[:300], task="classification"), ds.shape


def test_clipping_bounds_every_step_without_noise() -> None:
    data, shape = digits_silo()
    example = get_example("digits")
    torch.manual_seed(0)
    model = example.build_model(JobConfig().example, shape)  # type: ignore[arg-type]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = TrainParams(epochs=1, batch_size=30, lr=0.5, clip_norm=1e-3, noise_multiplier=0.0)
    update = train_local(model, data, params, seed=1, example=example)
    steps = int(update.metrics["dp_steps"])
    moved = math.sqrt(sum(float(((update.weights[k] - before[k]) ** 2).sum()) for k in before))
    # A step moves the model by lr * (sum of clipped per-example gradients) / expected batch
    # size; Poisson batches rarely reach twice the expected size.
    assert 0 < moved <= params.lr * params.clip_norm * steps * 2
    assert set(update.weights) == set(before)  # plain keys: Opacus' wrapper is gone


def test_private_training_is_reproducible_and_noisy() -> None:
    data, shape = digits_silo()
    example = get_example("digits")
    runs = []
    for noise in (1.0, 1.0, 0.0):
        torch.manual_seed(0)
        model = example.build_model(JobConfig().example, shape)  # type: ignore[arg-type]
        params = TrainParams(epochs=1, batch_size=30, lr=0.1, clip_norm=1.0, noise_multiplier=noise)
        runs.append(train_local(model, data, params, seed=7, example=example).weights)
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_epsilon_grows_with_steps_and_shrinks_with_noise() -> None:
    assert epsilon(1.0, 0.01, 100, 1e-5) < epsilon(1.0, 0.01, 1000, 1e-5)
    assert epsilon(2.0, 0.01, 1000, 1e-5) < epsilon(1.0, 0.01, 1000, 1e-5)
    assert epsilon(0.0, 0.01, 10, 1e-5) == float("inf")
    assert epsilon(1.0, 0.01, 0, 1e-5) == 0.0


def test_train_params_validation() -> None:
    with pytest.raises(ValueError, match="needs clip_norm"):
        TrainParams(epochs=1, batch_size=1, lr=0.1, noise_multiplier=1.0)
    with pytest.raises(ValueError, match="clip_norm must be > 0"):
        TrainParams(epochs=1, batch_size=1, lr=0.1, clip_norm=0.0)


def test_federation_reports_epsilon_per_silo(tmp_path: Path) -> None:
    config = JobConfig(
        example="digits",
        silos=2,
        rounds=2,
        epochs=1,
        output_dir=tmp_path,
        tracking=False,
        clip_norm=1.0,
        noise_multiplier=1.1,
    )
    result = run_federation(config)
    assert result.epsilon_per_silo is not None
    assert set(result.epsilon_per_silo) == {"silo-0", "silo-1"}
    assert all(0 < eps < 50 for eps in result.epsilon_per_silo.values())
    assert result.final_metrics["accuracy"] > 0.3


def test_target_epsilon_sets_each_silos_noise_and_logs_the_spend_per_round(
    tmp_path: Path,
) -> None:
    """Each silo's noise spends the target over the planned rounds, whatever its size; the
    spend after every round is in the summary and in MLflow (read back with MlflowClient); a
    resume may not change the rounds the noise was computed for."""
    import json

    from mlflow.tracking import MlflowClient
    from typer.testing import CliRunner

    from fl_jobs.cli.app import app

    out = tmp_path / "run"
    args = ["run", "--silos", "2", "--rounds", "3", "--epochs", "1", "--partition",
            "quantity:1", "--clip-norm", "1", "--target-epsilon", "4", "--no-baselines",
            "--output-dir", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    privacy = summary["privacy"]
    assert privacy["target_epsilon"] == 4 and privacy["noise_multiplier"] is None
    noise = privacy["noise_multiplier_per_silo"]
    assert noise["silo-0"] != noise["silo-1"]  # sizes differ, so does the noise each needs
    for silo, spent in privacy["epsilon_per_silo"].items():
        assert 3.9 <= spent <= 4.0, (silo, spent)  # Opacus' search stops within 0.01 below
    per_round = {s: [row["epsilon"][s] for row in summary["history"]] for s in noise}
    assert all(a < b < c for a, b, c in per_round.values())
    client = MlflowClient(summary["artifacts"]["mlflow_tracking_uri"])
    run_id = summary["artifacts"]["mlflow_run_id"]
    for silo, values in per_round.items():
        logged = client.get_metric_history(run_id, f"silo_{silo}_epsilon")
        assert [m.value for m in sorted(logged, key=lambda m: m.step)] == values
    assert "for epsilon 4" in result.output

    again = CliRunner().invoke(app, ["run", "--resume", str(out), "--rounds", "4"])
    assert again.exit_code == 2
    assert "--rounds 4 cannot change a run with target_epsilon 4" in again.stderr


def test_delta_is_checked_against_each_silos_size_and_reported(tmp_path: Path) -> None:
    """A delta >= 1/n is refused before anything runs, naming the silo; without one each
    silo accounts at 0.1/n, reported per silo with the adjacency."""
    import json

    from typer.testing import CliRunner

    from fl_jobs.cli.app import app

    base = ["run", "--silos", "2", "--rounds", "1", "--epochs", "1", "--clip-norm", "1",
            "--no-baselines", "--no-tracking"]  # fmt: skip
    out = tmp_path / "refused"
    refused = CliRunner().invoke(app, [*base, "--target-delta", "0.01", "--output-dir", str(out)])
    assert refused.exit_code == 2
    assert "error: silo-" in refused.stderr and "is >= 1/n for a silo of" in refused.stderr
    assert "use --target-delta" in refused.stderr
    assert not out.exists()

    out = tmp_path / "run"
    ok = CliRunner().invoke(app, [*base, "--output-dir", str(out)])
    assert ok.exit_code == 0, ok.output
    privacy = json.loads((out / "summary.json").read_text())["privacy"]
    assert privacy["adjacency"] == "replace-one, n public"
    sizes = json.loads((out / "summary.json").read_text())["silos"]
    for silo, n in sizes.items():
        assert privacy["delta_per_silo"][silo] == pytest.approx(0.1 / n)
    assert "replace-one adjacency" in ok.output


def test_replace_one_epsilon_is_group_privacy_of_opacus_add_remove() -> None:
    """The reported epsilon is 2e for an add/remove (e, d) of Opacus' accountant with
    (1 + e^e) d <= delta: larger than the add/remove figure, and consistent with it."""
    from opacus.accountants import RDPAccountant

    from fl_jobs.core.privacy import add_remove_spent, spent

    history = [(1.1, 0.05, 200)]
    accountant = RDPAccountant()
    accountant.history = [(1.1, 0.05, 200)]
    assert add_remove_spent(history, 1e-5) == pytest.approx(accountant.get_epsilon(1e-5))
    replace = spent(history, 1e-5)
    inner = 1e-5
    while True:  # the grid spent() walks
        inner /= 1.25
        e = accountant.get_epsilon(inner)
        if (1 + math.exp(e)) * inner <= 1e-5:
            break
    assert replace == pytest.approx(2 * e)
    assert replace > 2 * add_remove_spent(history, 1e-5)
