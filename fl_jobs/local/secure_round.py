"""The orchestrator's side of secure aggregation in a round: it relays keys and sealed shares
between the silos, sums their masked updates and unmasks only the sum.

The wire is a :class:`SecureRelay`: the local worker pipes (:class:`PoolRelay`) or the model
store (:class:`fl_jobs.store.secure_relay.StoreRelay`). The silos have trained and hold their
weights; this runs the attempts of the round
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

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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
from fl_jobs.local.wait_notice import WaitNotice, wait_notice
from fl_jobs.local.worker_pool import Dropped, WorkerPool
from fl_jobs.secure_aggregation import (
    FixedPointCodec,
    MaskedSum,
    MaskedUpdate,
    PublicKeys,
    Reveal,
    SecureAggregationSession,
)
from fl_jobs.strategies.base import WeightedMean


class SecureRelay(Protocol):
    """How the orchestrator reaches the silos for one exchange of the protocol."""

    def exchange(
        self,
        requests: Mapping[str, SecureRequest],
        *,
        timeout: float | None,
        on_wait: WaitNotice | None,
    ) -> Iterator[tuple[str, object]]:
        """Send each silo its request; yield each silo's reply (or :class:`Dropped`, or a
        :class:`Refused` for a reply that fails its checks) in the order of ``requests``."""


class PoolRelay:
    """:class:`SecureRelay` over the local worker processes' pipes."""

    def __init__(self, pool: WorkerPool, by_name: Mapping[str, Any]) -> None:
        self.pool, self.by_name = pool, by_name

    def exchange(
        self,
        requests: Mapping[str, SecureRequest],
        *,
        timeout: float | None,
        on_wait: WaitNotice | None,
    ) -> Iterator[tuple[str, object]]:
        workers = [self.by_name[name] for name in requests]
        unreachable: dict[str, Dropped] = {}
        for worker in workers:
            failed = self.pool.send(worker, requests[worker.name])
            if failed is not None:
                unreachable[worker.name] = failed
        for worker, reply in self.pool.replies(
            workers, unreachable, timeout=timeout, on_wait=on_wait
        ):
            yield worker.name, reply


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
        relay: SecureRelay,
        ledger: RoundLedger,
        codec: FixedPointCodec,
        timeout: float | None,
        floor: int,
        first_attempt: int = 0,
    ) -> None:
        self.first_attempt = first_attempt
        self.run_id = run_id
        self.round = round
        self.relay = relay
        self.floor = floor
        self.ledger = ledger
        self.codec = codec
        self.timeout = timeout

    def run(self, trained: list[str], global_weights: Mapping[str, torch.Tensor]) -> SecureOutcome:
        """``trained``: the silos holding a trained model, in silo order. Their sample counts
        stay with them, masked in their vectors; the sessions use the public bound."""
        silos = list(trained)
        # The silos' own floor (fl_jobs.secure_aggregation.silo_guard): fail, never shrink.
        floor = self.floor
        attempt = self.first_attempt
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
                silos,
                threshold=max(floor, len(silos) // 2 + 1),
                attempt=attempt,
                codec=self.codec,
            )
            outcome = self._attempt(session, silos, global_weights)
            if isinstance(outcome, SecureOutcome):
                return outcome
            gone = [s for s in silos if s not in outcome]
            silos = [s for s in silos if s in outcome]
            self.ledger.counted -= set(gone)  # a silent revealer's update is no longer in
            attempt += 1
            self.ledger.say(
                f"round {self.round}: secure aggregation starts over without "
                f"{', '.join(gone)} (attempt {attempt - self.first_attempt + 1}; nothing was "
                "unmasked)"
            )

    def _attempt(
        self,
        session: SecureAggregationSession,
        silos: list[str],
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
            s: tuple(shares[other].bundles[s] for other in shares if other != s) for s in silos
        }
        masked = self._exchange(silos, lambda s: MaskRequest(inbox[s]), MaskedUpdate)
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
        contributors = [s for s in silos if s in total.contributors]
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
        attempts = session.attempt - self.first_attempt + 1
        return SecureOutcome(mean, attempts, list(total.missing))

    def _exchange(
        self,
        silos: list[str],
        request: Callable[[str], SecureRequest],
        expected: type,
        *,
        counted: bool = False,
    ) -> dict[str, Any]:
        """Send each silo its request and gather the expected replies, in silo order; the
        silos lost on the way go to the ledger (``counted``: their update is already in)."""
        replies: dict[str, Any] = {}
        phase = f"secure aggregation ({PHASES.get(expected.__name__, expected.__name__)})"
        on_wait = wait_notice(self.round, self.ledger.notify, phase)
        requests = {s: request(s) for s in silos}
        for silo, reply in self.relay.exchange(requests, timeout=self.timeout, on_wait=on_wait):
            if isinstance(reply, Dropped):
                self.ledger.drop(silo, reply.reason, counted=counted)
            elif isinstance(reply, Refused):
                self.ledger.reject(silo, reply.reason)
            elif isinstance(reply, expected):
                replies[silo] = reply
            else:  # left out, like any message that fails its checks
                self.ledger.reject(
                    silo, f"sent a {type(reply).__name__}, expected a {expected.__name__}"
                )
        return replies
