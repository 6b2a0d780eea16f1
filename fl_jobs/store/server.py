"""The orchestrator's side of the model-store transport (see :mod:`fl_jobs.store.layout`).

It writes only to ``global`` and only reads the silos' containers. Each round's train
requests go out as one task document (one write whatever the number of silos), announced by
replacing ``head.json`` under its ETag; each silo's reply is polled in its own container with
backoff. Every reply passes :func:`fl_jobs.store.messages.read_update` or is rejected with
the reason logged; the orchestrator goes on without it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from fl_jobs.local.worker_pool import WAIT_NOTICE_S
from fl_jobs.store import layout
from fl_jobs.store import messages as msg
from fl_jobs.store.blobs import (
    NOT_MODIFIED,
    Backoff,
    Blob,
    Conflict,
    Store,
    TooLarge,
)
from fl_jobs.store.transport import (
    Diverged,
    Dropped,
    Rejected,
    Reply,
    Trained,
    TrainResult,
    TrainTask,
)

if TYPE_CHECKING:
    from fl_jobs.config import JobConfig
    from fl_jobs.local.round_ledger import RoundLedger
    from fl_jobs.local.wait_notice import WaitNotice
    from fl_jobs.strategies.base import WeightedMean

log = logging.getLogger("fl_jobs.store")

ORCHESTRATOR = "orchestrator"
#: The one attempt of an asynchronous task (a task that fails is replaced by a new one).
ASYNC_ATTEMPT = 1
_ROUND = re.compile(r"r(\d+)/")


def store_run_id(job: str) -> str:
    """The run a store job's secure-aggregation sessions belong to (the silo agents name the
    same run from their own ``--job``)."""
    return f"store:{job}"


class StoreServer:
    """:class:`~fl_jobs.store.transport.ServerTransport` over the model store."""

    def __init__(
        self, store: Store, job: str, silos: Sequence[str], config: JobConfig | None = None
    ) -> None:
        self.store, self.job, self.silos, self.config = store, job, list(silos), config
        self.attempt = 0
        self._head_etag: str | None = None
        self._model_sha: dict[int, str] = {}
        #: Asynchronous rounds: each silo's open task number, as the head announces it.
        self._open: dict[str, int] = {}
        #: Every rejected message: (round, silo, reason), for the run's record and the tests.
        self.rejections: list[tuple[int, str, str]] = []

    # -- global side ------------------------------------------------------------------------

    def publish_global(self, round: int, weights: Mapping[str, torch.Tensor]) -> None:
        head = msg.header("model", self.job, round, 0, ORCHESTRATOR)
        data = msg.encode_tensors(weights, head)
        # Create-only: a resumed orchestrator re-publishing the same model finds its bytes.
        self.store.create(layout.GLOBAL_CONTAINER, layout.model_blob(self.job, round), data)
        self._model_sha[round] = hashlib.sha256(data).hexdigest()

    def send_round(self, round: int, tasks: Sequence[TrainTask]) -> dict[str, Dropped]:
        """One task document for the round's next attempt, then the head points at it."""
        self.attempt = self._next_attempt(round)
        sha = self._model_sha.get(round - 1) or self._model_digest(round - 1)
        doc = msg.header(
            "task",
            self.job,
            round,
            self.attempt,
            ORCHESTRATOR,
            model=layout.model_blob(self.job, round - 1),
            model_sha256=sha,
            tasks={t.silo: {"seed": t.seed, "config": dict(t.config)} for t in tasks},
        )
        self.store.create(
            layout.GLOBAL_CONTAINER,
            layout.task_blob(self.job, round, self.attempt),
            msg.encode_json(doc),
        )
        self.set_head(round, self.attempt, complete=round - 1, state="running")
        return {}

    def set_head(
        self, round: int, attempt: int, *, complete: int, state: str, **extra: object
    ) -> None:
        """Replace head.json under the ETag last seen (this orchestrator holds the lease)."""
        doc = msg.header(
            "head", self.job, round, attempt, ORCHESTRATOR, complete=complete, state=state, **extra
        )
        name = layout.head_blob(self.job)
        if self._head_etag is None:
            current = self.store.read(layout.GLOBAL_CONTAINER, name)
            self._head_etag = current.etag if isinstance(current, Blob) else None
        data = msg.encode_json(doc)
        try:
            self._head_etag = self.store.replace(
                layout.GLOBAL_CONTAINER, name, data, etag=self._head_etag
            )
        except Conflict:
            # A retried write whose first try did land (its answer was lost) finds our bytes.
            current = self.store.read(layout.GLOBAL_CONTAINER, name)
            if not (isinstance(current, Blob) and current.data == data):
                raise
            self._head_etag = current.etag

    def _next_attempt(self, round: int) -> int:
        names = self.store.list(layout.GLOBAL_CONTAINER, layout.round_prefix(self.job, round))
        attempts = [a for a in map(layout.attempt_of, names) if a is not None]
        return max(attempts, default=0) + 1

    def _model_digest(self, round: int) -> str:
        blob = self.store.read(layout.GLOBAL_CONTAINER, layout.model_blob(self.job, round))
        if not isinstance(blob, Blob):
            raise RuntimeError(f"global model of round {round} is missing from the store")
        return hashlib.sha256(blob.data).hexdigest()

    # -- replies ----------------------------------------------------------------------------

    def replies(
        self,
        round: int,
        silos: Sequence[str],
        unreachable: Mapping[str, Dropped],
        *,
        timeout: float | None,
        template: Mapping[str, torch.Tensor],
    ) -> Iterator[tuple[str, Reply]]:
        return self.settle(
            silos, unreachable, lambda silo: self._poll(round, silo, template), timeout=timeout
        )

    def settle(
        self,
        silos: Sequence[str],
        unreachable: Mapping[str, Any],
        poll: Callable[[str], Any],
        *,
        timeout: float | None,
        on_wait: WaitNotice | None = None,
    ) -> Iterator[tuple[str, Any]]:
        """Each silo's answer (``poll`` returns it, or None while there is none) in the order
        of ``silos``, as soon as it and every silo before it are settled; polled with
        backoff; a silo silent at the deadline is :class:`Dropped` with its heartbeat's age."""
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        settled: dict[str, Any] = dict(unreachable)
        pending = [s for s in silos if s not in settled]
        backoff = Backoff()
        next_notice = started + WAIT_NOTICE_S
        for silo in silos:
            while silo not in settled:
                news = False
                for other in list(pending):
                    reply = poll(other)
                    if reply is not None:
                        settled[other] = reply
                        pending.remove(other)
                        news = True
                if silo in settled:
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    for late in pending:
                        settled[late] = Dropped(late, self._silence(late, timeout))
                    pending.clear()
                    break
                if news:
                    backoff.reset()
                if on_wait is not None and deadline is None and now >= next_notice:
                    # without a deadline, say now and then whom the round waits for
                    on_wait([s for s in silos if s not in settled], now - started)
                    next_notice += WAIT_NOTICE_S
                wait = backoff.next()
                if deadline is not None:
                    wait = min(wait, max(deadline - now, 0.0))
                time.sleep(wait)
            yield silo, settled[silo]

    def _poll(
        self,
        round: int,
        silo: str,
        template: Mapping[str, torch.Tensor],
        attempt: int | None = None,
    ) -> Reply | None:
        """The silo's reply if it is there (checked), else None."""
        attempt = self.attempt if attempt is None else attempt
        container = layout.silo_container(silo)
        name = layout.update_blob(self.job, round, attempt)
        limit = msg.tensor_limit(template)
        blob = self.store.read(container, name, max_bytes=limit)
        if blob is None or blob is NOT_MODIFIED:
            return None
        expect = msg.Expect("update", self.job, round, attempt, silo)
        try:
            if isinstance(blob, TooLarge):
                raise msg.MessageRejected(
                    f"{blob.size} bytes, more than the {limit} a model of this shape needs"
                )
            assert isinstance(blob, Blob)
            _, head = msg.decode_tensors(blob.data, limit=limit)
            if head.get("kind") == "diverged":
                msg.check_header(head, msg.Expect("diverged", *_rest(expect)))
                return Diverged(
                    silo, round, float(head.get("loss", "nan")), int(head.get("step", 0))
                )
            if head.get("kind") == "trained":  # secure aggregation: the update stays
                msg.check_header(head, msg.Expect("trained", *_rest(expect)))
                return Trained(silo, msg.read_metrics(head))
            if head.get("kind") == "refused":
                msg.check_header(head, msg.Expect("refused", *_rest(expect)))
                raise msg.MessageRejected(f"the silo refused the round: {head.get('reason')!r}")
            update = msg.read_update(blob.data, expect, template)
        except msg.MessageRejected as exc:
            reason = f"{container}/{name}: {exc}"
            log.warning("round %d: rejected a message from %s: %s", round, silo, reason)
            self.rejections.append((round, silo, reason))
            return Rejected(silo, str(exc))
        return TrainResult(silo, update.weights, update.n_samples, update.metrics)

    # -- asynchronous rounds (fl_jobs.rounds.async_engine) ------------------------------------
    #
    # Each task is a "round" of its own number with one attempt and one silo: its document in
    # ``global`` names the model version it trains from, the silo's reply goes where a round's
    # does, and the head lists each silo's open task (``open``), which the silo agents follow.

    def first_free_task(self) -> int:
        """After every task number in the store: a restarted orchestrator never announces a
        task document that already exists (they are create-only)."""
        prefix = f"{self.job}/rounds/"
        used = [
            int(match.group(1))
            for name in self.store.list(layout.GLOBAL_CONTAINER, prefix)
            if (match := _ROUND.match(name[len(prefix) :]))
        ]
        return max(used, default=0) + 1

    def dispatch(self, task: TrainTask, model_round: int) -> Dropped | None:
        sha = self._model_sha.get(model_round) or self._model_digest(model_round)
        doc = msg.header(
            "task",
            self.job,
            task.round,
            ASYNC_ATTEMPT,
            ORCHESTRATOR,
            model=layout.model_blob(self.job, model_round),
            model_round=model_round,
            model_sha256=sha,
            tasks={task.silo: {"seed": task.seed, "config": dict(task.config)}},
        )
        self.store.create(
            layout.GLOBAL_CONTAINER,
            layout.task_blob(self.job, task.round, ASYNC_ATTEMPT),
            msg.encode_json(doc),
        )
        self._open[task.silo] = task.round
        self.attempt = ASYNC_ATTEMPT
        self.set_head(
            max(self._open.values()),
            ASYNC_ATTEMPT,
            complete=model_round,
            state="running",
            open=dict(sorted(self._open.items())),
        )
        return None

    def next_arrival(
        self,
        busy: Mapping[str, TrainTask],
        started: Mapping[str, float],
        *,
        timeout: float | None,
        template: Mapping[str, torch.Tensor],
    ) -> tuple[str, Reply]:
        """The first busy silo whose reply is in its container (polled with backoff), or
        the first whose task is older than ``timeout``."""
        backoff = Backoff()
        while True:
            now = time.monotonic()
            for silo, task in busy.items():
                reply = self._poll(task.round, silo, template, ASYNC_ATTEMPT)
                if reply is not None:
                    return silo, reply
                if timeout is not None and now >= started[silo] + timeout:
                    return silo, Dropped(silo, self._silence(silo, timeout))
            wait = backoff.next()
            if timeout is not None:
                wait = min(wait, max(min(started[s] + timeout for s in busy) - now, 0.0))
            time.sleep(wait)

    def retire(self, keep_models: set[int], keep_tasks: set[int]) -> None:
        """The store keeps every model and update: they are the job's record."""

    def _silence(self, silo: str, timeout: float | None) -> str:
        reason = f"no answer within {timeout:g} s"
        blob = self.store.read(layout.silo_container(silo), layout.heartbeat_blob(self.job))
        if isinstance(blob, Blob):
            try:
                beat = msg.decode_json(blob.data)
                age = time.time() - float(beat.get("time", 0))
                reason += f" (last heartbeat {age:.0f} s ago, {beat.get('state', '?')})"
            except (msg.MessageRejected, TypeError, ValueError):
                pass
        else:
            reason += " (no heartbeat yet)"
        return reason

    def secure_round(
        self,
        round: int,
        trained: list[str],
        ledger: RoundLedger,
        template: Mapping[str, torch.Tensor],
    ) -> tuple[WeightedMean, dict[str, Any]]:
        """Secure aggregation among ``trained`` through the store (:mod:`.secure_relay`)."""
        from fl_jobs.local.secure_round import SecureRound
        from fl_jobs.secure_aggregation import FixedPointCodec
        from fl_jobs.store.secure_relay import StoreRelay, session_floor

        if self.config is None:
            raise RuntimeError("StoreServer needs the job's config for secure aggregation")
        relay = StoreRelay(self, round, self.attempt, template)
        outcome = SecureRound(
            run_id=store_run_id(self.job),
            round=round,
            relay=relay,
            ledger=ledger,
            codec=FixedPointCodec(clip=self.config.secure_aggregation.clip),
            timeout=self.config.federation.round_timeout,
            floor=session_floor(self.config, self.silos),
            # an orchestrator restarted in this round starts its sessions after the last one's
            first_attempt=(self.attempt - 1) * (len(self.silos) + 1),
        ).run(trained, template)
        return outcome.mean, outcome.to_plain()

    def rejoin(self, silo: str) -> str | None:
        """A silo agent is restarted by its own host (Azure ML job, Kubernetes); it picks up
        the next round's task by itself, so there is nothing to do here."""
        return None

    def finish(self, round: int, *, state: str = "finished") -> None:
        self.set_head(round, self.attempt, complete=round, state=state)


def _rest(expect: msg.Expect) -> tuple[str, int, int, str]:
    return expect.job, expect.round, expect.attempt, expect.writer
