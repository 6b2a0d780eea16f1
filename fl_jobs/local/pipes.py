"""The local worker processes behind :class:`~fl_jobs.store.transport.ServerTransport`: the
local engine's wire.

The global model and each update are files in the run folder (:mod:`fl_jobs.core.model_io`), and
requests and replies go over the workers' pipes (:class:`fl_jobs.local.worker_pool.WorkerPool`).
With secure aggregation the workers write no update file: they keep their trained weights,
and :meth:`PipesServer.secure_round` relays the protocol's messages between them
(:mod:`fl_jobs.local.secure_round`) and returns only the unmasked sum.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from fl_jobs.core.model_io import read_update, save_weights
from fl_jobs.errors import ModelUpdateError
from fl_jobs.local.round_ledger import Notify, RoundLedger
from fl_jobs.local.run_identity import RunIdentity
from fl_jobs.local.secure_round import PoolRelay, SecureRound
from fl_jobs.local.wait_notice import wait_notice
from fl_jobs.local.worker import TrainReply, TrainRequest
from fl_jobs.local.worker_pool import WorkerPool
from fl_jobs.secure_aggregation import FixedPointCodec
from fl_jobs.secure_aggregation.silo_guard import session_policy
from fl_jobs.store.transport import (
    Diverged,
    Dropped,
    Rejected,
    Reply,
    Trained,
    TrainResult,
    TrainTask,
)
from fl_jobs.strategies.base import WeightedMean


class PipesServer:
    """:class:`~fl_jobs.store.transport.ServerTransport` (and the round engine's
    ``SecureTransport``) over a started worker pool, with its files under ``folder``."""

    def __init__(
        self,
        pool: WorkerPool,
        folder: Path,
        *,
        identity: RunIdentity | None = None,
        notify: Notify | None = None,
        keep_files: bool = False,
    ) -> None:
        self.pool = pool
        self.models, self.updates = folder / "models", folder / "updates"
        self.by_name = {w.name: w for w in pool.workers}
        self.config = pool.prepared.config
        self.secure = self.config.secure_aggregation.enabled
        #: Binds every secure-aggregation session to this run (keys are fresh per session).
        self.identity = identity or RunIdentity(str(folder.resolve()), 1)
        self.notify = notify
        #: Keep every global model and update file (``run_federation(keep_files=True)``).
        self.keep_files = keep_files

    def _global_path(self, round: int) -> Path:
        return self.models / f"global_{round + 1:04d}.pt"

    def publish_global(self, round: int, weights: Mapping[str, torch.Tensor]) -> None:
        save_weights(self._global_path(round), weights, meta={"round": round + 1})

    def forget(self, round: int) -> None:
        """Delete round ``round``'s files (the global model it trained from, its updates)."""
        self._global_path(round - 1).unlink(missing_ok=True)
        shutil.rmtree(self.updates / f"round_{round:04d}", ignore_errors=True)

    def send_round(self, round: int, tasks: Sequence[TrainTask]) -> dict[str, Dropped]:
        unreachable: dict[str, Dropped] = {}
        for task in tasks:
            request = TrainRequest(
                round=round,
                global_path=self._global_path(round - 1),
                update_path=None
                if self.secure
                else self.updates / f"round_{round:04d}" / f"{task.silo}.pt",
                seed=task.seed,
                config=dict(task.config),
                run_id=self.identity.run_id,
            )
            failed = self.pool.send(self.by_name[task.silo], request)
            if failed is not None:
                unreachable[task.silo] = failed
        return unreachable

    def replies(
        self,
        round: int,
        silos: Sequence[str],
        unreachable: Mapping[str, Dropped],
        *,
        timeout: float | None,
        template: Mapping[str, torch.Tensor],
    ) -> Iterator[tuple[str, Reply]]:
        workers = [self.by_name[s] for s in silos]
        on_wait = wait_notice(round, self.notify)
        for worker, reply in self.pool.replies(
            workers, dict(unreachable), timeout=timeout, on_wait=on_wait
        ):
            yield worker.name, _checked(worker.name, reply, template)

    # -- asynchronous rounds (fl_jobs.rounds.async_engine) ------------------------------------

    def first_free_task(self) -> int:
        return 1  # a run's scratch folders are emptied when it starts

    def dispatch(self, task: TrainTask, model_round: int) -> Dropped | None:
        request = TrainRequest(
            round=task.round,
            global_path=self._global_path(model_round),
            update_path=self._task_update(task),
            seed=task.seed,
            config=dict(task.config),
            run_id=self.identity.run_id,
        )
        return self.pool.send(self.by_name[task.silo], request)

    def next_arrival(
        self,
        busy: Mapping[str, TrainTask],
        started: Mapping[str, float],
        *,
        timeout: float | None,
        template: Mapping[str, torch.Tensor],
    ) -> tuple[str, Reply]:
        worker, reply = self.pool.first_reply(
            [self.by_name[s] for s in busy],
            dict(started),
            timeout=timeout,
            on_wait=wait_notice(None, self.notify),
        )
        return worker.name, _checked(worker.name, reply, template)

    def retire(self, keep_models: set[int], keep_tasks: set[int]) -> None:
        if self.keep_files:
            return
        for folder in self.updates.glob("task_*"):
            if int(folder.name.split("_")[1]) not in keep_tasks:
                shutil.rmtree(folder, ignore_errors=True)
        for path in self.models.glob("global_*.pt"):
            if int(path.stem.split("_")[1]) - 1 not in keep_models:
                path.unlink(missing_ok=True)

    def _task_update(self, task: TrainTask) -> Path:
        return self.updates / f"task_{task.round:06d}" / f"{task.silo}.pt"

    def secure_round(
        self,
        round: int,
        trained: list[str],
        ledger: RoundLedger,
        template: Mapping[str, torch.Tensor],
    ) -> tuple[WeightedMean, dict[str, Any]]:
        outcome = SecureRound(
            run_id=self.identity.run_id,
            round=round,
            relay=PoolRelay(self.pool, self.by_name),
            ledger=ledger,
            codec=FixedPointCodec(clip=self.config.secure_aggregation.clip),
            timeout=self.config.federation.round_timeout,
            floor=session_policy(self.config).floor,
            # a resumed run starts its sessions after those the interrupted start offered
            first_attempt=(self.identity.starts - 1) * (len(self.by_name) + 1),
        ).run(trained, template)
        return outcome.mean, outcome.to_plain()

    def rejoin(self, silo: str) -> str | None:
        return self.pool.restart(self.by_name[silo])


def _checked(silo: str, reply: object, template: Mapping[str, torch.Tensor]) -> Reply:
    """A worker's answer as the round engines take it: an update file read back and checked
    against ``template`` (keys, shapes, finite), or why it is refused."""
    if isinstance(reply, Dropped | Diverged):
        return reply
    if not isinstance(reply, TrainReply):  # a secure-aggregation message: not here
        return Rejected(silo, f"unexpected {type(reply).__name__}")
    metrics = {k: float(v) for k, v in reply.metrics.items()}
    if reply.update_path is None:  # secure aggregation: the worker keeps its update
        return Trained(silo, metrics, reply.n_samples)
    try:
        weights, meta = read_update(reply.update_path, template)
    except ModelUpdateError as exc:
        return Rejected(silo, str(exc).replace(f"{reply.update_path}: ", ""))
    return TrainResult(silo, weights, int(meta["n_samples"]), metrics)
