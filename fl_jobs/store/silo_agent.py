"""The silo agent: waits for rounds in the model store, trains on its own data, replies.

Training is the local worker's own (:class:`fl_jobs.silo.silo_round.SiloTrainer` on the data
folder written and read back the same way), so a round trains to the same weights either way,
under the same silo-held controls: DP-SGD's randomness from the silo's secret, its ledger and
budget, silo-level DP's clipping, the metrics policy. The silo's store is this host's
(``$FL_SANDBOX_SILO_STORE``, see :mod:`fl_jobs.silo.silo_store`). The
data: a ``--data`` folder in the silo data format, or, in the sandbox, the silo's partition of
the job's data set written to its work folder (what the local workers do, standing for data
the site already holds).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from fl_jobs.core.silo_data import SiloArrays, read_silo_data
from fl_jobs.errors import TrainingDivergedError
from fl_jobs.local.prepare import PreparedJob
from fl_jobs.local.secure_messages import SecureSilo
from fl_jobs.rounds.job_parts import build_strategy
from fl_jobs.secure_aggregation.silo_guard import (
    SIGNING_PUBLIC_RECORD,
    GuardRefusal,
    SessionGuard,
)
from fl_jobs.silo.silo_cache import materialize_silo_folder
from fl_jobs.silo.silo_ledger import BudgetExhausted
from fl_jobs.silo.silo_round import SiloTrainer
from fl_jobs.silo.silo_store import SiloStore, local_silo_store
from fl_jobs.store import messages as msg
from fl_jobs.store.secure_relay import store_session_policy
from fl_jobs.store.silo import StoreSilo

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


def run_silo_agent(
    prepared: PreparedJob,
    transport: StoreSilo,
    data: SiloArrays,
    store: SiloStore | None = None,
    silos: Sequence[str] | None = None,
) -> int:
    """Serve rounds until the job is over; the number of rounds trained. ``store``: the
    silo's own store (default: this host's, :func:`fl_jobs.silo.silo_store.local_silo_store`).
    ``silos``: every silo of the job, from the silo's own manifest (secure aggregation joins
    sessions of these silos only)."""
    torch.set_num_threads(1)
    config, example = prepared.config, prepared.example
    silo = transport.silo
    own = store if store is not None else local_silo_store(silo)
    trainer = SiloTrainer(silo, config, example, prepared.dataset.shape, data, own)
    secure = (
        _secure_silo(prepared, transport, own, silos) if config.secure_aggregation.enabled else None
    )
    strategy = build_strategy(config) if secure is not None else None
    trained = 0
    transport.start()
    try:
        while (task := transport.next_task()) is not None:
            try:
                weights = transport.global_weights(task)
                if secure is not None and secure.guard is not None and strategy is not None:
                    own_settings = strategy.silo_config(task.round, silo)
                    secure.guard.check_train_settings(task.config, own_settings)
            except msg.MessageRejected as exc:  # not trained: the orchestrator drops it
                log.warning("%s: round %d not trained: %s", silo, task.round, exc)
                continue
            except GuardRefusal as exc:
                log.warning("%s: round %d not trained: %s", silo, task.round, exc)
                transport.refused(task, exc.code)
                continue
            try:
                done = trainer.train(
                    weights,
                    run=f"store:{transport.job}",
                    round=task.round,
                    seed=task.seed,
                    silo_config=task.config,
                )
            except TrainingDivergedError as exc:
                transport.diverged(task, exc.loss, exc.step)
                continue
            except BudgetExhausted as exc:  # nothing released: the orchestrator drops it
                log.warning("%s: round %d not trained: %s", silo, task.round, exc)
                continue
            if secure is None:
                transport.reply(task, done.update.weights, done.update.n_samples, done.sent)
            else:
                secure.trained_from(
                    done.update.weights,
                    done.update.n_samples,
                    weights,
                    round=task.round,
                    equal_weights=config.secure_aggregation.weights == "equal",
                )
                transport.trained(task, done.sent)
                for step, request in transport.secure_requests(task):
                    transport.secure_reply(task, step, secure.handle(request))  # type: ignore[arg-type]
            trained += 1
            log.info("%s: replied to round %d", silo, task.round)
    finally:
        transport.stop()
    return trained


def _secure_silo(
    prepared: PreparedJob, transport: StoreSilo, own: SiloStore, silos: Sequence[str] | None
) -> SecureSilo:
    """The silo's secure-aggregation side: its guard (policy from its own configuration and
    manifest, memory and signing key in its own store, peers' keys read from their own
    containers), with its signing key published in its container."""
    if not silos:
        raise ValueError("secure aggregation needs the job's silos (from the manifest)")
    policy = store_session_policy(prepared.config, silos, transport.job)
    guard = SessionGuard(transport.silo, policy, own, transport.peer_key)
    public = own.read(SIGNING_PUBLIC_RECORD)
    assert public is not None  # the guard made it
    transport.publish_key(public)
    return SecureSilo(transport.silo, guard)
