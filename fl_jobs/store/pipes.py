"""The local worker processes behind :class:`~fl_jobs.store.transport.ServerTransport`.

The same pipes and files as the local engine (:class:`fl_jobs.local.worker_pool.WorkerPool`,
:mod:`fl_jobs.model_io`), seen through the interface the model store implements too, so that
one round driver runs over either (the local engine's own loop still drives the pool
directly until issue 16's round engine replaces it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch

from fl_jobs.errors import ModelUpdateError
from fl_jobs.local.worker import TrainReply, TrainRequest
from fl_jobs.local.worker_pool import WorkerPool
from fl_jobs.model_io import read_update, save_weights
from fl_jobs.store.transport import Diverged, Dropped, Rejected, Reply, TrainResult, TrainTask


class PipesServer:
    """:class:`~fl_jobs.store.transport.ServerTransport` over a started worker pool."""

    def __init__(self, pool: WorkerPool, folder: Path) -> None:
        self.pool = pool
        self.models, self.updates = folder / "models", folder / "updates"
        self.by_name = {w.name: w for w in pool.workers}

    def _global_path(self, round: int) -> Path:
        return self.models / f"global_{round + 1:04d}.pt"

    def publish_global(self, round: int, weights: Mapping[str, torch.Tensor]) -> None:
        save_weights(self._global_path(round), weights, meta={"round": round + 1})

    def send_round(self, round: int, tasks: Sequence[TrainTask]) -> dict[str, Dropped]:
        unreachable: dict[str, Dropped] = {}
        for task in tasks:
            request = TrainRequest(
                round=round,
                global_path=self._global_path(round - 1),
                update_path=self.updates / f"round_{round:04d}" / f"{task.silo}.pt",
                seed=task.seed,
                config=dict(task.config),
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
        for worker, reply in self.pool.replies(workers, dict(unreachable), timeout=timeout):
            if isinstance(reply, Dropped | Diverged):
                yield worker.name, reply
                continue
            if not isinstance(reply, TrainReply):  # a secure-aggregation message: not here
                yield worker.name, Rejected(worker.name, f"unexpected {type(reply).__name__}")
                continue
            assert reply.update_path is not None
            try:
                weights, meta = read_update(reply.update_path, template)
            except ModelUpdateError as exc:
                yield (
                    worker.name,
                    Rejected(worker.name, str(exc).replace(f"{reply.update_path}: ", "")),
                )
                continue
            yield (
                worker.name,
                TrainResult(worker.name, weights, int(meta["n_samples"]), dict(reply.metrics)),
            )

    def rejoin(self, silo: str) -> str | None:
        return self.pool.restart(self.by_name[silo])
