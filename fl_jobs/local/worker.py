"""A silo worker: owns one data folder, trains when asked, returns only model files.

Started once per federation (``fork``) and reused every round; restarted by the orchestrator if
it dies or stops answering. On start it puts its own partition into its own folder (standing
for the data a site already holds; hard links from the silo data cache when the same data was
used before), then only ever reads from that folder. It answers each ``train`` request with
the path of its update file, its sample count and its metrics. With secure aggregation it
writes no update file: it keeps the trained weights and sends only a masked update, in the
steps of :mod:`fl_jobs.local.secure_messages`.

It never prints a traceback: when the orchestrator goes away (killed, stopped) the worker sees
a closed pipe and exits quietly; Ctrl-C is left to the orchestrator; SIGTERM ends it at once.
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fl_jobs.config import JobConfig
from fl_jobs.core.model_io import load_weights, save_weights
from fl_jobs.core.silo_data import SiloArrays, read_silo_data
from fl_jobs.errors import TrainingDivergedError
from fl_jobs.examples.base import DataShape, Example
from fl_jobs.local.secure_messages import SECURE_REQUESTS, SecureSilo
from fl_jobs.rounds.job_parts import build_strategy
from fl_jobs.secure_aggregation.silo_guard import (
    SIGNING_PUBLIC_RECORD,
    GuardRefusal,
    SessionGuard,
    session_policy,
)
from fl_jobs.silo.silo_cache import materialize_silo_folder
from fl_jobs.silo.silo_ledger import BudgetExhausted
from fl_jobs.silo.silo_round import SiloTrainer
from fl_jobs.silo.silo_store import local_silo_store


@dataclass(frozen=True)
class TrainRequest:
    """Train one round: from the global model at ``global_path`` into ``update_path``, with
    the strategy's settings for this silo and round (``config``, e.g. ``proximal_mu``).
    ``update_path`` None: keep the weights for secure aggregation, write nothing."""

    round: int
    global_path: Path
    update_path: Path | None
    seed: int
    config: dict[str, float] = field(default_factory=dict)
    #: The run's identity (fl_jobs.local.run_identity), which keys the strategy's silo state.
    run_id: str | None = None


@dataclass(frozen=True)
class TrainReply:
    update_path: Path | None
    n_samples: int | None
    """None under secure aggregation: the count travels masked with the update."""
    metrics: dict[str, float]


@dataclass(frozen=True)
class WorkerFailure:
    silo: str
    message: str


@dataclass(frozen=True)
class Diverged:
    """Local training hit a non-finite loss: the silo, the round and where."""

    silo: str
    round: int
    loss: float
    step: int


@dataclass(frozen=True)
class Ready:
    """The worker holds its data (and says whether it came from the cache). Its sample
    count is not sent: it travels with each update, and under secure aggregation only
    inside the masked vector."""

    from_cache: bool


STOP = "stop"


def session_guard(silo: str, config: JobConfig) -> SessionGuard | None:
    """The silo's secure-aggregation guard, from its own configuration (the silo set and
    the cohort per round), with its memory in the silo's store; None without secure
    aggregation."""
    if not config.secure_aggregation.enabled:
        return None
    published = SIGNING_PUBLIC_RECORD  # each peer's key, read from that peer's own store
    return SessionGuard(
        silo,
        session_policy(config),
        local_silo_store(silo),
        lambda peer: local_silo_store(peer).read(published),
    )


#: What a closed pipe raises on either end (the orchestrator died or closed it).
PIPE_CLOSED = (EOFError, OSError)


def run_worker(
    conn: Connection,
    *,
    silo: str,
    folder: Path,
    X: np.ndarray,
    y: np.ndarray,
    config: JobConfig,
    example: Example,
    shape: DataShape,
    cache: Path | None = None,
    inherited: Sequence[Connection] = (),
) -> None:
    """Worker main loop (runs in the child process)."""
    for conn_end in inherited:  # the orchestrator's pipe ends, copied by fork
        conn_end.close()
    # Ctrl-C (and a closed terminal's SIGHUP) reach the whole process group: the
    # orchestrator stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # The orchestrator's own SIGTERM handler was copied by fork; here SIGTERM just ends us.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # The orchestrator blocked both around the fork (see WorkerPool); deliver them now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    torch.set_num_threads(1)
    try:
        _serve(conn, silo, folder, X, y, config, example, shape, cache)
    except PIPE_CLOSED:
        return  # the orchestrator is gone: nothing to report to, nothing to print


def _serve(
    conn: Connection,
    silo: str,
    folder: Path,
    X: np.ndarray,
    y: np.ndarray,
    config: JobConfig,
    example: Example,
    shape: DataShape,
    cache: Path | None,
) -> None:
    try:
        arrays = SiloArrays(
            X=X, y=y, task=example.task, meta={"example": example.name, "silo": silo}
        )
        from_cache = materialize_silo_folder(folder, arrays, cache=cache)
        del X, y, arrays
        stored = read_silo_data(folder)
        data = SiloArrays(
            X=example.prepare(stored.X), y=stored.y, task=stored.task, meta=stored.meta
        )
        trainer = SiloTrainer(silo, config, example, shape, data, local_silo_store(silo))
    except Exception as exc:
        conn.send(WorkerFailure(silo, f"{type(exc).__name__}: {exc}"))
        return
    conn.send(Ready(from_cache))
    secure = SecureSilo(silo, session_guard(silo, config))
    strategy = build_strategy(config) if secure.guard is not None else None
    while True:
        request: Any = conn.recv()
        if request == STOP:
            return
        if isinstance(request, SECURE_REQUESTS):
            try:
                conn.send(secure.handle(request))
            except Exception:
                conn.send(WorkerFailure(silo, traceback.format_exc(limit=3)))
            continue
        try:
            weights, _ = load_weights(request.global_path)
            if secure.guard is not None and strategy is not None:  # its own settings only
                own = strategy.silo_config(request.round, silo)
                secure.guard.check_train_settings(request.config, own)
            trained = trainer.train(
                weights,
                run=str(request.global_path.parent),
                round=request.round,
                seed=request.seed,
                silo_config=request.config,
                state_run=request.run_id,
            )
            update = trained.update
            if request.update_path is None:  # the weight, masked: its count, or 1 (equal)
                secure.trained_from(
                    update.weights,
                    update.n_samples,
                    weights,
                    round=request.round,
                    equal_weights=config.secure_aggregation.weights == "equal",
                )
            else:
                save_weights(
                    request.update_path,
                    update.weights,
                    meta={"n_samples": update.n_samples, "metrics": trained.sent, "silo": silo},
                )
            count = None if request.update_path is None else update.n_samples
            reply: object = TrainReply(request.update_path, count, trained.sent)
        except TrainingDivergedError as exc:
            reply = Diverged(silo, request.round, exc.loss, exc.step)
        except (BudgetExhausted, GuardRefusal) as exc:
            reply = WorkerFailure(silo, str(exc))
        except Exception:
            reply = WorkerFailure(silo, traceback.format_exc(limit=3))
        conn.send(reply)
