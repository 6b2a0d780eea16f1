"""Silo-held randomness (issue 17): a silo's DP-SGD noise and sampling come from a secret in
its own store, so the orchestrator cannot replay its training, yet the silo itself can."""

from __future__ import annotations

import threading
from multiprocessing import Pipe
from pathlib import Path

import numpy as np
import pytest
import torch

from fl_jobs.config import JobConfig
from fl_jobs.core.model_io import load_weights, save_weights
from fl_jobs.core.seeds import derive_seed
from fl_jobs.core.silo_data import SiloArrays
from fl_jobs.core.training import train_local
from fl_jobs.local.prepare import prepare_job
from fl_jobs.local.worker import STOP, Ready, TrainReply, TrainRequest, _serve
from fl_jobs.rounds.job_parts import train_params_from_config
from fl_jobs.silo.silo_secret import SECRET_RECORD, private_seeds, silo_secret
from fl_jobs.silo.silo_store import LocalSiloStore, local_silo_store


def _config(tmp_path: Path, strategy: str = "fedavg") -> JobConfig:
    return JobConfig(
        example="digits",
        strategy=strategy,
        silos=2,
        rounds=1,
        epochs=1,
        output_dir=tmp_path / "out",
        tracking=False,
        clip_norm=1.0,
        noise_multiplier=1.1,
    )


def _train_in_silo(
    config: JobConfig,
    silo_index: int,
    global_path: Path,
    out: Path,
    seed: int | None = None,
    settings: dict[str, float] | None = None,
) -> dict:
    """One train request answered by the real worker loop (in a thread, over a pipe)."""
    prepared = prepare_job(config)
    ds, rows = prepared.dataset, prepared.partitions[silo_index]
    name = prepared.silo_names[silo_index]
    orchestrator, silo_end = Pipe()
    thread = threading.Thread(
        target=_serve,
        args=(
            silo_end,
            name,
            out.parent / f"{name}-data",
            ds.X[rows],
            ds.y[rows],
            config,
            prepared.example,
            ds.shape,
            None,
        ),
    )
    thread.start()
    try:
        assert isinstance(orchestrator.recv(), Ready)
        if seed is None:
            seed = derive_seed(config.federation.seed, 1, silo_index)
        orchestrator.send(TrainRequest(1, global_path, out, seed, settings or {}))
        reply = orchestrator.recv()
        assert isinstance(reply, TrainReply), reply
    finally:
        orchestrator.send(STOP)
        thread.join()
    weights, _ = load_weights(out)
    return weights


def _global_model(config: JobConfig, path: Path) -> torch.nn.Module:
    prepared = prepare_job(config)
    torch.manual_seed(config.federation.seed)
    model = prepared.example.build_model(config.example, prepared.dataset.shape)
    save_weights(path, {k: v.detach().clone() for k, v in model.state_dict().items()})
    return model


def test_the_orchestrator_cannot_replay_a_silos_private_training(tmp_path: Path) -> None:
    """Everything the orchestrator holds - job seed, round, silo name and index, global
    model, even the silo's data - does not reproduce the silo's DP update; the silo itself
    (same store, e.g. after a restart) reproduces it bit for bit."""
    config = _config(tmp_path)
    global_path = tmp_path / "global.pt"
    model = _global_model(config, global_path)
    first = _train_in_silo(config, 0, global_path, tmp_path / "u1.pt")

    prepared = prepare_job(config)
    rows = prepared.partitions[0]
    data = SiloArrays(
        X=prepared.example.prepare(prepared.dataset.X[rows]),
        y=prepared.dataset.y[rows],
        task=prepared.example.task,
        meta={"example": "digits"},
    )
    replay = train_local(
        model,
        data,
        train_params_from_config(config),
        seed=derive_seed(config.federation.seed, 1, 0),
        example=prepared.example,
    )
    assert any(not torch.equal(first[k], replay.weights[k]) for k in first)

    again = _train_in_silo(config, 0, global_path, tmp_path / "u2.pt")  # the silo restarted
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert local_silo_store("silo-0").read(SECRET_RECORD) is not None  # the silo kept it


def test_another_request_seed_gets_no_fresh_noise(tmp_path: Path) -> None:
    """The orchestrator varying the seed of its request for the same model gets the same DP
    update back: no second release to average or to unmask over another survivor set."""
    config = _config(tmp_path)
    global_path = tmp_path / "global.pt"
    _global_model(config, global_path)
    first = _train_in_silo(config, 0, global_path, tmp_path / "u1.pt")
    other = _train_in_silo(config, 0, global_path, tmp_path / "u2.pt", seed=12345)
    assert all(torch.equal(first[k], other[k]) for k in first)


def test_other_train_settings_get_fresh_noise(tmp_path: Path) -> None:
    """Two releases from one model and round that differ only in a setting with no effect
    worth the name (a proximal term of 1e-12) must not share their noise: their difference
    would cancel it. The same settings draw the same noise (a resume)."""
    # FedProx's silos take the proximal term (a silo refuses settings its strategy lacks)
    config = _config(tmp_path, strategy="fedprox")
    global_path = tmp_path / "global.pt"
    _global_model(config, global_path)
    first = _train_in_silo(config, 0, global_path, tmp_path / "u1.pt", settings={})
    same = _train_in_silo(config, 0, global_path, tmp_path / "u2.pt", settings={})
    other = _train_in_silo(
        config, 0, global_path, tmp_path / "u3.pt", settings={"proximal_mu": 1e-12}
    )
    assert all(torch.equal(first[k], same[k]) for k in first)
    assert max(float((first[k] - other[k]).abs().max()) for k in first) > 1e-3


def test_a_new_secret_changes_the_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    global_path = tmp_path / "global.pt"
    _global_model(config, global_path)
    first = _train_in_silo(config, 1, global_path, tmp_path / "u1.pt")
    monkeypatch.setenv("FL_SANDBOX_SILO_STORE", str(tmp_path / "other-machine"))
    other = _train_in_silo(config, 1, global_path, tmp_path / "u2.pt")
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_the_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    store = LocalSiloStore(tmp_path / "silo-a")
    secret = silo_secret(store)
    assert len(secret) == 32 and silo_secret(store) == secret
    assert silo_secret(LocalSiloStore(tmp_path / "silo-b")) != secret
    assert (tmp_path / "silo-a").stat().st_mode & 0o077 == 0
    sampling, noise = private_seeds(secret, 7, 1)
    assert sampling != noise and 0 <= sampling < 2**63
    assert private_seeds(secret, 7, 1) == (sampling, noise)
    assert private_seeds(secret, 7, 2) != (sampling, noise)
    (tmp_path / "silo-c").mkdir()
    (tmp_path / "silo-c" / SECRET_RECORD).write_bytes(b"short")
    with pytest.raises(ValueError, match="damaged"):
        silo_secret(LocalSiloStore(tmp_path / "silo-c"))
    assert np.frombuffer(secret, dtype=np.uint8).std() > 0


def test_a_resumed_private_run_is_bit_identical(tmp_path: Path) -> None:
    """The silo keeps its secret, so stopping after round 2 and resuming gives the weights of
    one uninterrupted run."""
    from typer.testing import CliRunner

    from fl_jobs.cli.app import app
    from fl_jobs.config import load_job_config
    from fl_jobs.local.federation import run_federation

    out = tmp_path / "run"
    common = ["--silos", "2", "--epochs", "1", "--clip-norm", "1", "--noise-multiplier", "1.1"]
    quiet = ["--no-baselines", "--no-tracking"]
    first = CliRunner().invoke(
        app, ["run", *common, "--rounds", "2", *quiet, "--output-dir", str(out)]
    )
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out), "--rounds", "3"])
    assert resumed.exit_code == 0, resumed.output
    final, _ = load_weights(out / "global_model.pt")
    config = load_job_config(
        None,
        {"silos": 2, "epochs": 1, "clip_norm": 1.0, "noise_multiplier": 1.1, "rounds": 3,
         "tracking": False, "baselines": False, "output_dir": tmp_path / "clean"},
    )  # fmt: skip
    clean = run_federation(config).final_weights
    assert all(torch.equal(final[k], clean[k]) for k in clean)


def test_dp_sgd_gives_a_crafted_model_no_divergence_to_observe(tmp_path: Path) -> None:
    """A model crafted to make the loss non-finite on some records would turn a "diverged"
    reply into a question about the data. Under DP-SGD a record whose gradient is not finite
    adds nothing (its clipped gradient is zero, the noise covers it) and the round is
    trained, answered and booked as any other."""
    from fl_jobs.silo.silo_ledger import read_ledger

    config = _config(tmp_path)
    global_path = tmp_path / "global.pt"
    model = _global_model(config, global_path)
    crafted = {k: v.clone() for k, v in model.state_dict().items()}
    first, second = [k for k, v in crafted.items() if v.dim() == 2][:2]
    crafted[first][:, 1] = 3e38  # records bright in pixel 1 overflow the next layer
    crafted[second][:] = 1e30
    save_weights(global_path, crafted)
    booked = len(read_ledger(local_silo_store("silo-0")))
    update = _train_in_silo(config, 0, global_path, tmp_path / "u.pt")
    assert len(read_ledger(local_silo_store("silo-0"))) == booked + 1
    assert all(torch.isfinite(v).all() for v in update.values())
