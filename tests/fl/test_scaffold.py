"""SCAFFOLD through the silo hook: against an independent implementation of the paper's
Algorithm 1 on fixed inputs, bit-identical resume, the silo's own state, and what the job
config and the silos refuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from fl_jobs.config import JobConfig
from fl_jobs.core.silo_data import SiloArrays
from fl_jobs.core.silo_hook import EXTRA, HookState, round_inputs, split_extras, with_extras
from fl_jobs.core.training import LocalUpdate, TrainParams, train_local
from fl_jobs.local.federation import run_federation
from fl_jobs.silo.silo_store import local_silo_store
from fl_jobs.strategies.scaffold import Scaffold, ScaffoldHook

LR, EPOCHS = 0.1, 3


class Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)


def _model(weights: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    model.load_state_dict(weights)
    return model


class _Example:
    """What train_local asks of an example: the loss, and whether to merge a short batch."""

    merge_short_last_batch = False

    @staticmethod
    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(out, y)


def _silo_data(seed: int, label_bias: int) -> SiloArrays:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(8, 3)).astype(np.float32) + label_bias
    y = np.full(8, label_bias, dtype=np.int64)
    y[:2] = 1 - label_bias  # mostly one label: strong skew
    return SiloArrays(X=X, y=y, task="classification", meta={"silo": f"s{seed}"})


def _reference(
    x: dict[str, torch.Tensor], data: list[SiloArrays], rounds: int
) -> dict[str, torch.Tensor]:
    """Algorithm 1 of the paper, written out: full-batch gradients, option II, every silo
    every round (|S| = N), equal silo sizes (the sample-weighted mean is the plain mean)."""
    names = list(x)
    c = {k: torch.zeros_like(v) for k, v in x.items()}
    c_i = [{k: torch.zeros_like(v) for k, v in x.items()} for _ in data]
    for _ in range(rounds):
        dys, dcs = [], []
        for i, silo in enumerate(data):
            y = {k: v.clone().requires_grad_(True) for k, v in x.items()}
            X, t = torch.from_numpy(silo.X), torch.from_numpy(silo.y)
            for _ in range(EPOCHS):  # one full batch per epoch: K = EPOCHS steps
                loss = torch.nn.functional.cross_entropy(X @ y["0.weight"].T + y["0.bias"], t)
                grads = torch.autograd.grad(loss, [y[k] for k in names])
                with torch.no_grad():
                    for k, g in zip(names, grads, strict=True):
                        y[k] -= LR * (g - c_i[i][k] + c[k])
            new_ci = {k: c_i[i][k] - c[k] + (x[k] - y[k].detach()) / (EPOCHS * LR) for k in names}
            dys.append({k: y[k].detach() - x[k] for k in names})
            dcs.append({k: new_ci[k] - c_i[i][k] for k in names})
            c_i[i] = new_ci
        x = {k: x[k] + sum(d[k] for d in dys) / len(data) for k in names}
        c = {k: c[k] + sum(d[k] for d in dcs) / len(data) for k in names}
    return x


def test_scaffold_equals_the_papers_algorithm_on_fixed_inputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    start = {k: v.detach().clone() for k, v in torch.nn.Linear(3, 2).state_dict().items()}
    start = {f"0.{k}": v for k, v in start.items()}
    data = [_silo_data(1, 0), _silo_data(2, 1)]
    rounds = 3
    expected = _reference(dict(start), data, rounds)

    server = Scaffold()
    hook = server.silo_hook()
    params = TrainParams(epochs=EPOCHS, batch_size=8, lr=LR)  # full batch: K = EPOCHS
    x = dict(start)
    for rnd in range(1, rounds + 1):
        server.configure_round(rnd, ["s1", "s2"], np.random.default_rng(0))
        published = with_extras(x, server.to_silos(rnd, x))
        updates = []
        for i, silo in enumerate(data):
            model_weights, received = split_extras(published)
            model = _model(model_weights)
            state = HookState(local_silo_store(f"s{i}", tmp_path), "run-1", "scaffold")
            inputs = round_inputs(model, received, {}, round=rnd, state=state)
            hook.check_received(received, inputs.names, inputs.start)
            update = train_local(
                model, silo, params, seed=rnd, example=_Example(), terms=hook.terms(inputs)
            )
            trained = [p.detach() for p in model.parameters()]
            extras = hook.reply(inputs, trained, LR)
            updates.append(LocalUpdate(with_extras(update.weights, extras), update.n_samples))
        template = with_extras(x, server.reply_template(x))
        assert all(set(u.weights) == set(template) for u in updates)
        x = server.aggregate(rnd, x, iter(updates))
    for key in expected:
        assert torch.allclose(x[key], expected[key], atol=1e-6), key
    # Not FedAvg: without the correction the same rounds land elsewhere.
    assert not torch.allclose(x["0.weight"], _fedavg(start, data, rounds)["0.weight"], atol=1e-4)


def _fedavg(
    x: dict[str, torch.Tensor], data: list[SiloArrays], rounds: int
) -> dict[str, torch.Tensor]:
    params = TrainParams(epochs=EPOCHS, batch_size=8, lr=LR)
    for rnd in range(rounds):
        trained = []
        for silo in data:
            model = _model(x)
            trained.append(train_local(model, silo, params, seed=rnd, example=_Example()).weights)
        x = {k: sum(t[k] for t in trained) / len(trained) for k in x}
    return x


def test_the_silo_keeps_its_control_variate_per_run_and_round(tmp_path: Path) -> None:
    store = local_silo_store("s0", tmp_path)
    state = HookState(store, "run-a", "scaffold")
    assert state.latest_before(1) is None
    state.save(1, {"ci/w": torch.ones(2)})
    state.save(3, {"ci/w": torch.full((2,), 3.0)})
    state.save(3, {"ci/w": torch.zeros(2)})  # a redone round keeps the first bytes
    assert torch.equal(state.latest_before(3)["ci/w"], torch.ones(2))  # type: ignore[index]
    assert torch.equal(state.latest_before(9)["ci/w"], torch.full((2,), 3.0))  # type: ignore[index]
    assert HookState(store, "run-b", "scaffold").latest_before(9) is None  # another run


def test_a_silo_refuses_a_model_without_or_with_a_bad_control_variate() -> None:
    hook = ScaffoldHook()
    names, start = ["0.weight"], [torch.zeros(2, 3)]
    with pytest.raises(ValueError, match="did not arrive"):
        hook.check_received({}, names, start)
    with pytest.raises(ValueError, match="has shape"):
        hook.check_received({"c/0.weight": torch.zeros(3)}, names, start)
    with pytest.raises(ValueError, match="not finite"):
        hook.check_received({"c/0.weight": torch.full((2, 3), float("nan"))}, names, start)
    with pytest.raises(ValueError, match="unexpected strategy tensor"):
        hook.check_received({"c/0.weight": torch.zeros(2, 3), "x": torch.zeros(1)}, names, start)
    # a strategy that sends nothing refuses stray tensors too
    plain = Scaffold.__mro__[1]().silo_hook()  # the base Strategy's hook
    with pytest.raises(ValueError, match="unexpected strategy tensors"):
        plain.check_received({"c/0.weight": torch.zeros(2, 3)}, names, start)
    assert EXTRA == "~"


def _config(out: Path, rounds: int) -> JobConfig:
    return JobConfig(
        example="digits",
        silos=4,
        rounds=rounds,
        partition="shards:2",
        epochs=2,
        strategy={"name": "scaffold"},
        seed=3,
        tracking=False,
        baselines=False,
        output_dir=out,
    )


def test_scaffold_resumes_bit_identically_with_the_silos_state(tmp_path: Path) -> None:
    straight = run_federation(_config(tmp_path / "straight", 5))
    states = []
    run_federation(_config(tmp_path / "stopped", 3), on_state=states.append)
    resumed = run_federation(_config(tmp_path / "stopped", 5), resume=states[-1])
    for key, value in straight.final_weights.items():
        assert torch.equal(resumed.final_weights[key], value), key
    assert set(states[-1].strategy_state["c"]) == set(straight.final_weights)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"secure_aggregation": True}, "secure_aggregation cannot be combined with strategy"),
        ({"async_buffer": 2}, "async_buffer cannot run strategy scaffold"),
        ({"screen_norms": True}, "screen_norms cannot run with strategy scaffold"),
        (
            {"dp_level": "silo", "dp_silo_clip": 1.0, "noise_multiplier": 1.0},
            "silo-level DP cannot use strategy scaffold",
        ),
    ],
)
def test_the_job_config_refuses_what_scaffold_cannot_do(settings: dict, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        JobConfig(example="digits", silos=5, strategy={"name": "scaffold"}, **settings)


def test_scaffold_under_dp_sgd_corrects_after_the_noise_and_books_every_round(
    tmp_path: Path,
) -> None:
    """The correction joins the gradient after clipping and noise (it reads no data): the
    rounds train, the silos' epsilon grows as with FedAvg, and the silo state is kept."""
    config = _config(tmp_path / "dp", 2).with_settings(clip_norm=1.0, noise_multiplier=1.0)
    result = run_federation(JobConfig.model_validate(config.model_dump()))
    assert len(result.history) == 2
    spent = [r.silo_metrics["silo-0"]["epsilon"] for r in result.history]
    assert 0 < spent[0] < spent[1]
    assert result.epsilon_per_silo is not None and set(result.epsilon_per_silo) == {
        f"silo-{i}" for i in range(4)
    }


def test_a_silo_side_strategy_is_one_file_and_a_registry_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/fl/toy/damped.py and the one StrategyInfo below: its tensors reach the silos and
    come back, its silos keep state across rounds, and the job runs in the local engine."""
    import dataclasses

    from fl_jobs.rounds import job_parts
    from fl_jobs.strategies import registry

    info = dataclasses.replace(
        registry.STRATEGIES["fedavg"],
        name="damped",
        title="Damped",
        module="tests.fl.toy.damped",
        cls="Damped",
        silo_state=True,
    )
    monkeypatch.setitem(registry.STRATEGIES, "damped", info)
    seen: list[dict[str, float]] = []
    real = job_parts.build_strategy

    def keep(config: JobConfig):  # the orchestrator's instance, to read what it received
        strategy = real(config)
        if config.strategy.name == "damped":
            strategy.seen = seen  # type: ignore[attr-defined]
        return strategy

    monkeypatch.setattr("fl_jobs.local.federation.build_strategy", keep)
    config = JobConfig(
        example="digits",
        silos=2,
        rounds=3,
        epochs=1,
        strategy={"name": "damped"},
        tracking=False,
        baselines=False,
        output_dir=tmp_path / "run",
    )
    result = run_federation(config)
    assert len(result.history) == 3 and result.final_metrics["accuracy"] > 0.3
    assert [s["rounds"] for s in seen] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]  # silo-held counts
    assert all(s["steps"] > 0 for s in seen)
