"""The local federation loop: workers per silo, FedAvg on the orchestrator side.

The orchestrator (this process) holds the global model and the test set. It sends each
selected silo the path of the global model file and gets back the path of an update file, a
sample count and metrics; it validates every update and folds it into one running sum in a
fixed silo order (so a seed always gives the same weights). It never opens a silo folder.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np
import torch

from fl_jobs.config import JobConfig
from fl_jobs.evaluation import evaluate
from fl_jobs.local.prepare import PreparedJob, prepare_job
from fl_jobs.local.worker import STOP, TrainReply, TrainRequest, WorkerFailure, run_worker
from fl_jobs.model_io import read_update, save_weights
from fl_jobs.seeds import derive_seed
from fl_jobs.strategies.fedavg import FedAvg
from fl_jobs.torch_threads import single_threaded
from fl_jobs.training import LocalUpdate, state_weights


@dataclass
class RoundRecord:
    """One round: who trained, the global model's test metrics, each silo's metrics."""

    round: int
    selected: list[str]
    global_metrics: dict[str, float]
    silo_metrics: dict[str, dict[str, float]]
    seconds: float


@dataclass
class FederationResult:
    example: str
    metric_name: str
    higher_is_better: bool
    silo_names: list[str]
    silo_sizes: list[int]
    history: list[RoundRecord]
    final_metrics: dict[str, float]
    final_weights: dict[str, torch.Tensor]
    wall_seconds: float
    initial_metrics: dict[str, float] = field(default_factory=dict)
    #: With DP-SGD: epsilon spent by each silo over the run (at ``config.target_delta``).
    epsilon_per_silo: dict[str, float] | None = None


Progress = Callable[[RoundRecord], None]


class FederationError(RuntimeError):
    """A worker failed or died; the message names the silo."""


@dataclass
class _Worker:
    name: str
    process: BaseProcess
    conn: Connection


def warm_up_torch(model: torch.nn.Module, prepared: PreparedJob) -> None:
    """One throwaway optimiser step before forking: torch initialises lazily, and paying it
    once here instead of once per forked worker makes the first round as fast as the rest."""
    ds = prepared.dataset
    scratch = prepared.example.build_model(prepared.config, ds.shape)
    scratch.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(scratch.parameters(), lr=1e-3)
    X = torch.from_numpy(np.ascontiguousarray(ds.X[:2], dtype=np.float32))
    dtype = torch.int64 if prepared.example.task == "classification" else torch.float32
    y = torch.as_tensor(ds.y[:2], dtype=dtype)
    prepared.example.loss_fn(scratch(X), y).backward()
    opt.step()


def initial_model(prepared: PreparedJob) -> torch.nn.Module:
    """The seeded initial global model (the baselines start from the same weights)."""
    torch.manual_seed(prepared.config.seed)
    return prepared.example.build_model(prepared.config, prepared.dataset.shape)


def run_federation(
    config: JobConfig,
    *,
    prepared: PreparedJob | None = None,
    progress: Progress | None = None,
    keep_files: bool = False,
) -> FederationResult:
    """Run ``config.rounds`` rounds of FedAvg across ``config.silos`` local workers."""
    with single_threaded():
        return _run(config, prepared=prepared, progress=progress, keep_files=keep_files)


def _run(
    config: JobConfig,
    *,
    prepared: PreparedJob | None,
    progress: Progress | None,
    keep_files: bool,
) -> FederationResult:
    start = time.perf_counter()
    prepared = prepared or prepare_job(config)
    example, ds = prepared.example, prepared.dataset
    out = Path(config.output_dir)
    silos_root, models_dir, updates_dir = out / "silos", out / "models", out / "updates"
    for folder in (silos_root, models_dir, updates_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    model = initial_model(prepared)
    warm_up_torch(model, prepared)
    global_weights = state_weights(model)
    strategy = FedAvg(config.fraction, config.server_lr, config.server_momentum)
    rng = np.random.default_rng(derive_seed(config.seed, 0xC11E))

    workers = _start_workers(prepared, silos_root)
    history: list[RoundRecord] = []
    try:
        initial_metrics = evaluate(model, ds.test_X, ds.test_y, example)
        for rnd in range(1, config.rounds + 1):
            t0 = time.perf_counter()
            selected = strategy.configure_round(rnd, workers, rng)
            global_path = models_dir / f"global_{rnd:04d}.pt"
            save_weights(global_path, global_weights, meta={"round": rnd})
            for index, worker in enumerate(workers):
                if worker in selected:
                    worker.conn.send(
                        TrainRequest(
                            round=rnd,
                            global_path=global_path,
                            update_path=updates_dir / f"round_{rnd:04d}" / f"{worker.name}.pt",
                            seed=derive_seed(config.seed, rnd, index),
                        )
                    )
            silo_metrics: dict[str, dict[str, float]] = {}
            updates = _collect(selected, global_weights, silo_metrics)
            global_weights = strategy.aggregate(global_weights, updates)
            model.load_state_dict(global_weights)
            if not keep_files:
                global_path.unlink()
                shutil.rmtree(updates_dir / f"round_{rnd:04d}", ignore_errors=True)
            record = RoundRecord(
                round=rnd,
                selected=[w.name for w in selected],
                global_metrics=evaluate(model, ds.test_X, ds.test_y, example),
                silo_metrics=silo_metrics,
                seconds=time.perf_counter() - t0,
            )
            history.append(record)
            if progress is not None:
                progress(record)
    finally:
        _stop_workers(workers)
    save_weights(out / "global_model.pt", global_weights, meta={"rounds": config.rounds})
    return FederationResult(
        example=config.example,
        metric_name=example.metric_name,
        higher_is_better=example.higher_is_better,
        silo_names=prepared.silo_names,
        silo_sizes=prepared.silo_sizes(),
        history=history,
        epsilon_per_silo=_privacy_spent(config, history),
        final_metrics=history[-1].global_metrics,
        final_weights=global_weights,
        wall_seconds=time.perf_counter() - start,
        initial_metrics=initial_metrics,
    )


def _privacy_spent(config: JobConfig, history: list[RoundRecord]) -> dict[str, float] | None:
    if config.clip_norm is None:
        return None
    from fl_jobs.privacy import spent_per_silo

    steps: dict[str, float] = {}
    rates: dict[str, float] = {}
    for record in history:
        for silo, metrics in record.silo_metrics.items():
            steps[silo] = steps.get(silo, 0.0) + metrics.get("dp_steps", 0.0)
            rates[silo] = metrics.get("dp_sample_rate", 1.0)
    noise = float(config.noise_multiplier or 0.0)
    return spent_per_silo(steps, rates, noise, config.target_delta)


def _collect(
    selected: list[_Worker],
    template: dict[str, torch.Tensor],
    silo_metrics: dict[str, dict[str, float]],
) -> Iterator[LocalUpdate]:
    """Yield each selected silo's validated update, in silo order, one at a time."""
    for worker in selected:
        reply = _receive(worker)
        if not isinstance(reply, TrainReply):
            raise FederationError(f"silo {worker.name} sent an unexpected reply: {reply!r}")
        weights, meta = read_update(reply.update_path, template)
        metrics = {k: float(v) for k, v in reply.metrics.items()}
        silo_metrics[worker.name] = {**metrics, "samples": float(meta["n_samples"])}
        yield LocalUpdate(weights=weights, n_samples=int(meta["n_samples"]), metrics=metrics)


def _receive(worker: _Worker) -> object:
    try:
        message = worker.conn.recv()
    except EOFError:
        code = worker.process.exitcode
        raise FederationError(f"silo {worker.name} worker died (exit code {code})") from None
    if isinstance(message, WorkerFailure):
        raise FederationError(f"silo {message.silo} failed: {message.message}")
    return message


def _start_workers(prepared: PreparedJob, silos_root: Path) -> list[_Worker]:
    ctx = mp.get_context("fork")
    workers: list[_Worker] = []
    ds = prepared.dataset
    try:
        for name, idx in zip(prepared.silo_names, prepared.partitions, strict=True):
            parent_conn, child_conn = ctx.Pipe()
            process = ctx.Process(
                target=run_worker,
                name=f"fl-{name}",
                args=(child_conn,),
                kwargs={
                    "silo": name,
                    "folder": silos_root / name,
                    "X": ds.X[idx],
                    "y": ds.y[idx],
                    "config": prepared.config,
                    "example": prepared.example,
                    "shape": ds.shape,
                    # Forked children inherit every open pipe end; each closes the parent's
                    # ends so that it sees end-of-file (and exits) if the parent dies.
                    "inherited": [parent_conn, *(w.conn for w in workers)],
                },
                daemon=True,
            )
            process.start()
            child_conn.close()
            workers.append(_Worker(name, process, parent_conn))
        for worker in workers:
            _receive(worker)  # ("ready", n): the silo wrote and re-read its own folder
    except BaseException:
        _stop_workers(workers)
        raise
    return workers


def _stop_workers(workers: list[_Worker]) -> None:
    for worker in workers:
        with contextlib.suppress(BrokenPipeError, OSError):
            worker.conn.send(STOP)
    for worker in workers:
        worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(timeout=5)
        worker.conn.close()
