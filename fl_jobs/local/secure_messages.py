"""The secure-aggregation steps of a local round, as messages between the orchestrator and a
silo worker, and the worker's side of them (:class:`SecureSilo`).

After training, a worker keeps its trained weights in memory (no update file is written) and
answers, in order: :class:`KeysRequest` (a new session: fresh keys), :class:`SharesRequest`
(every silo's public keys in, sealed share bundles out), :class:`MaskRequest` (the bundles
addressed to it in, its masked update out) and :class:`RevealRequest` (its shares for
unmasking). A redo of the round after a dropout starts again at :class:`KeysRequest` with the
next attempt's session; the trained weights stay. See docs/secure-aggregation.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

import torch

from fl_jobs.errors import FLJobError
from fl_jobs.secure_aggregation import (
    MaskedUpdate,
    PublicKeys,
    Reveal,
    SecureAggregationClient,
    SecureAggregationSession,
    ShareBundle,
)
from fl_jobs.secure_aggregation.silo_guard import (
    GuardRefusal,
    SessionGuard,
    model_digest,
    update_digest,
)


@dataclass(frozen=True)
class KeysRequest:
    """Start a session (a round attempt): make fresh keys and advertise them."""

    session: SecureAggregationSession


@dataclass(frozen=True)
class SharesRequest:
    """Every silo's public keys, with each silo's signature on its own (relayed as sent):
    share the secrets, one sealed bundle per peer."""

    public_keys: dict[str, PublicKeys]
    signatures: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class MaskRequest:
    """The bundles the other silos sealed for this one: take them, then mask the update."""

    bundles: tuple[ShareBundle, ...]


@dataclass(frozen=True)
class ConsistencyRequest:
    """Round 3: sign the split of survivors and dropped silos the orchestrator shows."""

    survivors: tuple[str, ...]
    dropped: tuple[str, ...]


@dataclass(frozen=True)
class ConsistencyReply:
    signature: bytes


@dataclass(frozen=True)
class RevealRequest:
    """Unmask: the silos whose masked updates were summed, and those that are missing, with
    the survivors' signatures on that split (:class:`ConsistencyRequest`)."""

    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    signatures: dict[str, bytes] = field(default_factory=dict)
    #: Each survivor's signature on the global model it trained from, as sent with its
    #: masked update (silo_guard.model_message).
    models: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class KeysReply:
    public_keys: PublicKeys
    #: The silo's Ed25519 signature on its keys (silo_guard.keys_message); empty without a guard.
    signature: bytes = b""


@dataclass(frozen=True)
class SharesReply:
    bundles: dict[str, ShareBundle]


#: The refusal a silo sends when its update cannot be masked (a weight beyond the clip, or
#: not finite): a fixed code, no value and no tensor name.
UPDATE_NOT_ENCODABLE = (
    "update-not-encodable: a weight is beyond the secure-aggregation clip or not finite "
    "(the detail is in the silo's own log)"
)


@dataclass(frozen=True)
class Refused:
    """The silo would not take this step (e.g. a weight beyond the clip): it is left out."""

    silo: str
    reason: str


SecureRequest = KeysRequest | SharesRequest | MaskRequest | ConsistencyRequest | RevealRequest
SecureReply = KeysReply | SharesReply | MaskedUpdate | ConsistencyReply | Reveal | Refused
SECURE_REQUESTS = (KeysRequest, SharesRequest, MaskRequest, ConsistencyRequest, RevealRequest)
SECURE_REPLIES = (KeysReply, SharesReply, MaskedUpdate, ConsistencyReply, Reveal, Refused)


class SecureSilo:
    """A worker's secure-aggregation state: the round's trained weights and the client of
    the current session (replaced by every :class:`KeysRequest`)."""

    def __init__(self, silo: str, guard: SessionGuard | None = None) -> None:
        self.silo = silo
        self.guard = guard
        self.weights: dict[str, torch.Tensor] | None = None
        self.n_samples = 0
        self.round = 0
        #: Digest of the global model the weights were trained from (signed in round 3).
        self.model = ""
        self._update = ""
        self._client: SecureAggregationClient | None = None

    def trained(
        self, weights: dict[str, torch.Tensor], n_samples: int, *, round: int, model: str
    ) -> None:
        """Keep round ``round``'s trained model (trained from the global model of digest
        ``model``) until it is masked; a new round forgets the last."""
        self.weights, self.n_samples, self._client = weights, n_samples, None
        self.round, self.model = round, model
        self._update = update_digest(weights, n_samples)

    def trained_from(
        self,
        weights: dict[str, torch.Tensor],
        n_samples: int,
        global_weights: dict[str, torch.Tensor],
        *,
        round: int,
        equal_weights: bool,
    ) -> None:
        """:meth:`trained` for round ``round``'s update trained from ``global_weights``; the
        weight it masks is its sample count, or 1 with equal weights."""
        weight = 1 if equal_weights else n_samples
        self.trained(weights, weight, round=round, model=model_digest(global_weights))

    def handle(self, request: SecureRequest) -> SecureReply:
        """One step; an input the protocol refuses comes back as :class:`Refused` (with the
        guard's fixed reason code when the guard refused the session)."""
        try:
            return self._step(request)
        except GuardRefusal as exc:
            self._client = None
            return Refused(self.silo, exc.code)
        except FLJobError as exc:
            return Refused(self.silo, str(exc))

    def _step(self, request: SecureRequest) -> SecureReply:
        if isinstance(request, KeysRequest):
            self._client = None
            if self.guard is not None:
                self.guard.accept(request.session, self._update, self.round, self.model)
            self._client = SecureAggregationClient(request.session, self.silo)
            keys = self._client.public_keys
            if self.guard is None:
                return KeysReply(keys)
            return KeysReply(keys, self.guard.sign_keys(request.session, keys))
        client = self._client
        if client is None or self.weights is None:
            return Refused(self.silo, "no secure-aggregation session is open in this worker")
        if isinstance(request, SharesRequest):
            if self.guard is not None:  # before any key agreement
                self.guard.check_peer_keys(client.session, request.public_keys, request.signatures)
            return SharesReply(client.share_secrets(request.public_keys))
        if isinstance(request, MaskRequest):
            client.receive_shares(request.bundles)
            try:
                masked = client.masked_update(self.weights, self.n_samples)
            except FLJobError as exc:
                # The detail names a weight and its value: it stays in the silo's own log.
                print(f"{self.silo}: refused to mask: {exc}", file=sys.stderr)
                return Refused(self.silo, UPDATE_NOT_ENCODABLE)
            if self.guard is None:
                return masked
            return replace(
                masked, model_signature=self.guard.sign_model(client.session, self.model)
            )
        if isinstance(request, ConsistencyRequest):
            if self.guard is None:
                return Refused(self.silo, "this silo has no signing key")
            signed = self.guard.sign_survivors(client.session, request.survivors, request.dropped)
            return ConsistencyReply(signed)
        if self.guard is not None:
            client.session.check_partition(request.survivors, request.dropped)
            self.guard.check_signatures(
                client.session, request.survivors, request.dropped, request.signatures
            )
            self.guard.check_models(client.session, request.survivors, request.models, self.model)
            self.guard.revealing(client.session, self._update, self.model, request.survivors)
        return client.reveal(request.survivors, request.dropped)
