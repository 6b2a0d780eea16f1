"""The orchestrator's side of secure aggregation in a local round: it relays keys and sealed
shares between the silo workers, sums their masked updates and unmasks only the sum.

The workers have trained and hold their weights; this runs the attempts of the round
(docs/secure-aggregation.md, "One round" and "Dropouts"):

* a silo lost before its shares were relayed: nothing secret was exchanged, so the attempt
  starts over without it (a new session: new keys, shares and masks);
* lost after that, before its masked update arrived (or its update was refused): the
  survivors' reveals carry shares of its mask key, and its masks are removed from the sum;
* lost after its masked update arrived: still counted, its self mask is rebuilt from the
  other silos' shares;
* fewer survivors than the session's threshold: the attempt is abandoned, never unmasked,
  and the round starts over with the silos still answering.

Every loss goes to the round's ledger, which stops the job when the quorum is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from fl_jobs.errors import FLJobError, QuorumLostError
from fl_jobs.local.round_ledger import RoundLedger
from fl_jobs.local.secure_messages import (
    ConsistencyReply,
    ConsistencyRequest,
    KeysReply,
    KeysRequest,
    MaskRequest,
    Refused,
    RevealRequest,
    SecureRequest,
    SharesReply,
    SharesRequest,
)
from fl_jobs.local.wait_notice import wait_notice
from fl_jobs.local.worker_pool import Dropped, FederationError, SiloWorker, WorkerPool
from fl_jobs.secure_aggregation import (
    FixedPointCodec,
    MaskedSum,
    MaskedUpdate,
    PublicKeys,
    Reveal,
    SecureAggregationSession,
)
from fl_jobs.secure_aggregation.silo_guard import session_policy
from fl_jobs.strategies.base import WeightedMean


@dataclass
class SecureOutcome:
    """The round's weighted mean, recovered from masked sums, and how it was reached."""

    mean: WeightedMean
    #: Session attempts the round took (1 unless a silo was lost before unmasking).
    attempts: int
    #: Silos whose masks were removed with the survivors' shares (lost after the relay).
    recovered: list[str] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "contributors": self.mean.count,
            "recovered": list(self.recovered),
        }


#: How a wait notice names each exchange, by the reply it waits for.
PHASES = {
    "KeysReply": "key exchange",
    "SharesReply": "share exchange",
    "MaskedUpdate": "masked updates",
    "Reveal": "mask removal",
}


class SecureRound:
    """One round's secure aggregation over the workers that trained in it."""

    def __init__(
        self,
        *,
        run_id: str,
        round: int,
        pool: WorkerPool,
        ledger: RoundLedger,
        codec: FixedPointCodec,
        timeout: float | None,
    ) -> None:
        self.run_id = run_id
        self.round = round
        self.pool = pool
        self.ledger = ledger
        self.codec = codec
        self.timeout = timeout

    def run(
        self, trained: list[SiloWorker], global_weights: Mapping[str, torch.Tensor]
    ) -> SecureOutcome:
        """``trained``: each worker holding a trained model, in silo order. Their sample
        counts stay with them, masked in their vectors; the sessions use the public bound."""
        silos = list(trained)
        # The silos' own floor (fl_jobs.secure_aggregation.silo_guard): fail, never shrink.
        floor = session_policy(self.pool.prepared.config).floor
        attempt = 0
        while True:
            if len(silos) < floor:
                raise QuorumLostError(
                    f"round {self.round}: secure aggregation needs at least {floor} silos (a "
                    f"majority of the round's cohort) and only {len(silos)} can still "
                    "contribute",
                    "keep more silos answering (see --round-timeout), or run without "
                    "--secure-aggregation",
                )
            session = SecureAggregationSession(
                self.run_id,
                self.round,
                [w.name for w in silos],
                threshold=max(floor, len(silos) // 2 + 1),
                attempt=attempt,
                codec=self.codec,
            )
            outcome = self._attempt(session, silos, global_weights)
            if isinstance(outcome, SecureOutcome):
                return outcome
            gone = [w.name for w in silos if w.name not in outcome]
            silos = [w for w in silos if w.name in outcome]
            self.ledger.counted -= set(gone)  # a silent revealer's update is no longer in
            attempt += 1
            self.ledger.say(
                f"round {self.round}: secure aggregation starts over without "
                f"{', '.join(gone)} (attempt {attempt + 1}; nothing was unmasked)"
            )

    def _attempt(
        self,
        session: SecureAggregationSession,
        silos: list[SiloWorker],
        global_weights: Mapping[str, torch.Tensor],
    ) -> SecureOutcome | list[str]:
        """The round's outcome, or the silos to start the next attempt with."""
        keys = self._exchange(silos, lambda _: KeysRequest(session), KeysReply)
        if len(keys) < len(silos):
            return list(keys)
        public: dict[str, PublicKeys] = {name: reply.public_keys for name, reply in keys.items()}
        signed = {name: reply.signature for name, reply in keys.items()}
        shares = self._exchange(silos, lambda _: SharesRequest(public, signed), SharesReply)
        if len(shares) < len(silos):
            return list(shares)
        inbox = {
            w.name: tuple(shares[other].bundles[w.name] for other in shares if other != w.name)
            for w in silos
        }
        masked = self._exchange(silos, lambda w: MaskRequest(inbox[w.name]), MaskedUpdate)
        total = MaskedSum(session, public, global_weights)
        for name, update in masked.items():
            try:
                total.add(update)
            except FLJobError as exc:
                self.ledger.reject(name, str(exc))
        if len(total.contributors) < session.threshold:
            return list(total.contributors)
        if total.missing:
            self.ledger.say(
                f"round {self.round}: removing the masks of {', '.join(total.missing)} with "
                "the other silos' shares"
            )
        contributors = [w for w in silos if w.name in total.contributors]
        split = ConsistencyRequest(total.contributors, total.missing)
        signed = self._exchange(contributors, lambda _: split, ConsistencyReply, counted=True)
        if len(signed) < session.threshold:
            return list(signed)
        signatures = {name: reply.signature for name, reply in signed.items()}
        models = {name: masked[name].model_signature for name in total.contributors}
        ask = RevealRequest(total.contributors, total.missing, signatures, models)
        reveals = self._exchange(contributors, lambda _: ask, Reveal, counted=True)
        if len(reveals) < session.threshold:
            return list(reveals)
        weights = total.finish(list(reveals.values()))
        assert total.total_samples is not None
        mean = WeightedMean(weights, float(total.total_samples), len(total.contributors))
        return SecureOutcome(mean, session.attempt + 1, list(total.missing))

    def _exchange(
        self,
        silos: list[SiloWorker],
        request: Callable[[SiloWorker], SecureRequest],
        expected: type,
        *,
        counted: bool = False,
    ) -> dict[str, Any]:
        """Send each silo its request and gather the expected replies, in silo order; the
        silos lost on the way go to the ledger (``counted``: their update is already in)."""
        unreachable: dict[str, Dropped] = {}
        for worker in silos:
            failed = self.pool.send(worker, request(worker))
            if failed is not None:
                unreachable[worker.name] = failed
        replies: dict[str, Any] = {}
        phase = f"secure aggregation ({PHASES.get(expected.__name__, expected.__name__)})"
        on_wait = wait_notice(self.round, self.ledger.notify, phase)
        for worker, reply in self.pool.replies(
            silos, unreachable, timeout=self.timeout, on_wait=on_wait
        ):
            if isinstance(reply, Dropped):
                self.ledger.drop(worker.name, reply.reason, counted=counted)
            elif isinstance(reply, Refused):
                self.ledger.reject(worker.name, reply.reason)
            elif isinstance(reply, expected):
                replies[worker.name] = reply
            else:
                raise FederationError(
                    f"silo {worker.name} sent a {type(reply).__name__} during secure "
                    f"aggregation, expected a {expected.__name__}"
                )
        return replies
