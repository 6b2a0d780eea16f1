"""What a round engine needs from the wire between the orchestrator and the silos.

The local engine talks to its worker processes through pipes
(:class:`~fl_jobs.local.pipes.PipesServer`); :class:`~fl_jobs.store.server.StoreServer` does
the same through the model store. Both fit :class:`ServerTransport`, and the one round engine
(:mod:`fl_jobs.rounds.round_engine`) drives either: publish the global model, send a round's train
requests, take the replies in silo order within the deadline (a silo that died, stayed silent
or sent a message that fails its checks comes back as :class:`Dropped` or :class:`Rejected`,
never an exception), and let a dropped silo rejoin. :class:`SiloTransport` is the silo's
side: wait for a request, fetch the model it names, reply.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from fl_jobs.local.worker import Diverged
from fl_jobs.local.worker_pool import Dropped

__all__ = [
    "AsyncServerTransport",
    "Diverged",
    "Dropped",
    "Rejected",
    "Reply",
    "ServerTransport",
    "SiloTransport",
    "TrainResult",
    "TrainTask",
    "Trained",
]


@dataclass(frozen=True)
class TrainTask:
    """Train one round from the global model after ``round - 1``: the silo's seed and the
    strategy's settings for it (e.g. ``proximal_mu``). ``attempt`` is the transport's: a round
    announced again (an orchestrator restarted) gets the next one."""

    silo: str
    round: int
    seed: int
    config: dict[str, float] = field(default_factory=dict)
    attempt: int = 0


@dataclass(frozen=True)
class TrainResult:
    """A silo's update, already checked against the global model (keys, shapes, finite)."""

    silo: str
    weights: dict[str, torch.Tensor]
    n_samples: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class Trained:
    """Under secure aggregation: the silo trained and keeps its update (and, masked in it,
    its sample count), which only the masked sum will carry."""

    silo: str
    metrics: dict[str, float]
    n_samples: int | None = None


@dataclass(frozen=True)
class Rejected:
    """A message from the silo that failed its checks: the round goes on without it."""

    silo: str
    reason: str


Reply = TrainResult | Trained | Diverged | Rejected | Dropped


class ServerTransport(Protocol):
    """The orchestrator's side of the wire."""

    def publish_global(self, round: int, weights: Mapping[str, torch.Tensor]) -> None:
        """Make the global model after ``round`` (0: initial) available to the silos."""

    def send_round(self, round: int, tasks: Sequence[TrainTask]) -> dict[str, Dropped]:
        """Ask each task's silo to train; the silos that cannot be reached at all."""

    def replies(
        self,
        round: int,
        silos: Sequence[str],
        unreachable: Mapping[str, Dropped],
        *,
        timeout: float | None,
        template: Mapping[str, torch.Tensor],
    ) -> Iterator[tuple[str, Reply]]:
        """Each silo's reply in the order of ``silos``, as soon as it and every silo before
        it are settled; ``template`` (the global model) is what updates are checked against."""

    def rejoin(self, silo: str) -> str | None:
        """Bring a dropped silo back for the next round; why not, if it cannot be."""


class AsyncServerTransport(Protocol):
    """The orchestrator's side of the wire for asynchronous rounds (FedBuff,
    :mod:`fl_jobs.rounds.async_engine`): one task per silo at a time, each from the global model of
    its own version, and the replies in the order they arrive."""

    def publish_global(self, round: int, weights: Mapping[str, torch.Tensor]) -> None:
        """Make version ``round`` of the global model available to the silos."""

    def first_free_task(self) -> int:
        """The lowest task number this job has not used yet on this wire."""

    def dispatch(self, task: TrainTask, model_round: int) -> Dropped | None:
        """Ask ``task.silo`` to train task ``task.round`` from version ``model_round``; a
        :class:`Dropped` if it cannot be reached."""

    def next_arrival(
        self,
        busy: Mapping[str, TrainTask],
        started: Mapping[str, float],
        *,
        timeout: float | None,
        template: Mapping[str, torch.Tensor],
    ) -> tuple[str, Reply]:
        """The first busy silo to settle: its checked reply, or :class:`Dropped` when it died
        or ``timeout`` seconds passed since ``started[silo]`` (``time.monotonic``)."""

    def retire(self, keep_models: set[int], keep_tasks: set[int]) -> None:
        """Global models no task trains from any more, and the replies of every task but
        ``keep_tasks`` (those in flight), may go."""

    def rejoin(self, silo: str) -> str | None:
        """Bring a dropped silo back; why not, if it cannot be."""


class SiloTransport(Protocol):
    """A silo's side of the wire."""

    def next_task(self) -> TrainTask | None:
        """Block until there is a round for this silo; None when the job is over."""

    def global_weights(self, task: TrainTask) -> dict[str, torch.Tensor]:
        """The global model ``task`` trains from."""

    def reply(
        self,
        task: TrainTask,
        weights: Mapping[str, torch.Tensor],
        n_samples: int,
        metrics: Mapping[str, float],
    ) -> None:
        """Send the trained update (never replacing one already sent for this attempt)."""

    def diverged(self, task: TrainTask, loss: float, step: int) -> None:
        """Say that local training diverged."""
