"""What crosses the orchestrator: share bundles, masked updates and reveals.

Plain data (bytes, ints, one uint64 vector), so any transport can carry them: a pipe to a
local worker, a file. Each names its session (run, round, attempt and digest) so that a
message from another round or attempt is refused by name, not summed into garbage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fl_jobs.errors import SecureAggregationError
from fl_jobs.secure_aggregation.layout import ModelLayout
from fl_jobs.secure_aggregation.session import SecureAggregationSession


@dataclass(frozen=True)
class SessionTag:
    """Which session a message belongs to."""

    run_id: str
    round: int
    attempt: int
    digest: bytes

    @classmethod
    def of(cls, session: SecureAggregationSession) -> SessionTag:
        return cls(session.run_id, session.round, session.attempt, session.digest)

    def check(self, session: SecureAggregationSession, what: str) -> None:
        if self.digest == session.digest:
            return
        raise SecureAggregationError(
            f"{what} belongs to run {self.run_id!r} round {self.round} attempt "
            f"{self.attempt}, not to run {session.run_id!r} {session.label} (or its silos "
            "or settings differ)",
            "send every message of a round attempt with that attempt's session",
        )


@dataclass(frozen=True)
class ShareBundle:
    """One silo's Shamir shares for one peer (of its self-mask seed and of its mask private
    key), AES-256-GCM encrypted to that peer; the orchestrator only relays it."""

    tag: SessionTag
    sender: str
    recipient: str
    nonce: bytes
    ciphertext: bytes


WEIGHT_SLOTS = 1
"""Elements after the model's in a masked vector: the silo's sample count (its weight)."""


@dataclass(frozen=True)
class MaskedUpdate:
    """A silo's encoded weighted update plus its masks: uniformly random to anyone without
    the masks' seeds.

    The vector holds the model's elements weighted by the silo's sample count, then the count
    itself as one more element (:data:`WEIGHT_SLOTS`), masked with the rest, as Flower's
    SecAgg+ does: the orchestrator learns the round's total count, never a silo's. The
    commitment lets the orchestrator check the self-mask seed it rebuilds from shares.
    """

    tag: SessionTag
    silo: str
    layout: ModelLayout
    vector: np.ndarray = field(repr=False)
    self_mask_commitment: bytes = field(repr=False)
    #: The silo's signature on the global model it trained from (empty without a guard; see
    #: fl_jobs.secure_aggregation.silo_guard.model_message).
    model_signature: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Reveal:
    """A surviving silo's answer in the unmasking step: its shares of every survivor's
    self-mask seed and of every dropped silo's mask private key (never both for one silo)."""

    tag: SessionTag
    silo: str
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    self_mask_shares: dict[str, int]
    mask_key_shares: dict[str, int]
