"""A silo worker: owns one data folder, trains when asked, returns only model files.

Started once per federation (``fork``) and reused every round. On start it writes its own
partition into its own folder (standing for the data a site already holds), then only ever
reads from that folder. It answers each ``train`` request with the path of its update file,
its sample count and its metrics.
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fl_jobs.config import JobConfig
from fl_jobs.examples.base import DataShape, Example
from fl_jobs.model_io import load_weights, save_weights
from fl_jobs.silo_data import SiloArrays, read_silo_data, write_silo_data
from fl_jobs.training import train_local, train_params_from_config


@dataclass(frozen=True)
class TrainRequest:
    round: int
    global_path: Path
    update_path: Path
    seed: int


@dataclass(frozen=True)
class TrainReply:
    update_path: Path
    n_samples: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class WorkerFailure:
    silo: str
    message: str


STOP = "stop"


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
    inherited: Sequence[Connection] = (),
) -> None:
    """Worker main loop (runs in the child process)."""
    for conn_end in inherited:  # the orchestrator's pipe ends, copied by fork
        conn_end.close()
    # Ctrl-C reaches the whole process group: the orchestrator stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    try:
        write_silo_data(
            folder,
            SiloArrays(X=X, y=y, task=example.task, meta={"example": example.name, "silo": silo}),
        )
        del X, y
        stored = read_silo_data(folder)
        data = SiloArrays(
            X=example.prepare(stored.X), y=stored.y, task=stored.task, meta=stored.meta
        )
        model = example.build_model(config, shape)
        params = train_params_from_config(config)
    except Exception as exc:
        conn.send(WorkerFailure(silo, f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", data.n_samples))
    while True:
        try:
            request: Any = conn.recv()
        except EOFError:
            return
        if request == STOP:
            return
        try:
            weights, _ = load_weights(request.global_path)
            model.load_state_dict(weights)
            update = train_local(model, data, params, seed=request.seed, example=example)
            save_weights(
                request.update_path,
                update.weights,
                meta={"n_samples": update.n_samples, "metrics": update.metrics, "silo": silo},
            )
            conn.send(TrainReply(request.update_path, update.n_samples, update.metrics))
        except Exception:
            conn.send(WorkerFailure(silo, traceback.format_exc(limit=3)))
