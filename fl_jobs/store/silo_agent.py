"""The silo agent: waits for rounds in the model store, trains on its own data, replies.

Training is the local worker's own (:func:`fl_jobs.training.train_local` on the data folder
written and read back the same way), so a round trains to the same weights either way. The
data: a ``--data`` folder in the silo data format, or, in the sandbox, the silo's partition of
the job's data set written to its work folder (what the local workers do, standing for data
the site already holds).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from fl_jobs.errors import TrainingDivergedError
from fl_jobs.local.prepare import PreparedJob
from fl_jobs.silo_cache import materialize_silo_folder
from fl_jobs.silo_data import SiloArrays, read_silo_data
from fl_jobs.store import messages as msg
from fl_jobs.store.silo import StoreSilo
from fl_jobs.training import train_local, train_params_from_config, with_silo_config

log = logging.getLogger("fl_jobs.store")


def silo_data(
    prepared: PreparedJob, index: int, silo: str, folder: Path, *, given: bool
) -> SiloArrays:
    """The silo's training data as the local worker sees it: ``folder`` as it is if
    ``given``, else the silo's partition of the job's data set written there first."""
    if not given:
        ds = prepared.dataset
        rows = prepared.partitions[index]
        arrays = SiloArrays(
            X=ds.X[rows],
            y=ds.y[rows],
            task=prepared.example.task,
            meta={"example": prepared.example.name, "silo": silo},
        )
        materialize_silo_folder(folder, arrays, cache=None)
    stored = read_silo_data(folder)
    return SiloArrays(
        X=prepared.example.prepare(stored.X), y=stored.y, task=stored.task, meta=stored.meta
    )


def run_silo_agent(prepared: PreparedJob, transport: StoreSilo, data: SiloArrays) -> int:
    """Serve rounds until the job is over; the number of rounds trained."""
    torch.set_num_threads(1)
    config, example = prepared.config, prepared.example
    model = example.build_model(config, prepared.dataset.shape)
    params = train_params_from_config(config)
    trained = 0
    transport.start()
    try:
        while (task := transport.next_task()) is not None:
            try:
                model.load_state_dict(transport.global_weights(task))
            except msg.MessageRejected as exc:  # not trained: the orchestrator drops it
                log.warning("%s: round %d not trained: %s", transport.silo, task.round, exc)
                continue
            try:
                update = train_local(
                    model,
                    data,
                    with_silo_config(params, task.config),
                    seed=task.seed,
                    example=example,
                )
            except TrainingDivergedError as exc:
                transport.diverged(task, exc.loss, exc.step)
                continue
            transport.reply(task, update.weights, update.n_samples, update.metrics)
            trained += 1
            log.info("%s: replied to round %d", transport.silo, task.round)
    finally:
        transport.stop()
    return trained
