"""What a silo checks before it takes part in a secure-aggregation session, and what it
remembers afterwards, so that an active orchestrator cannot unmask one silo's update.

The session object comes from the orchestrator; the silo trusts none of it as sent:

* it rebuilds the session from its fields (the digest must match) and checks it against its
  own configuration: every silo is one it was configured with, the threshold is at least
  the floor (a majority of the cohort its own configuration plans per round), and the
  session has at least that many silos (a round fails rather than shrinks below it);
* the session is for the run this silo serves (its own configuration names it) and for the
  round it has just trained;
* it never joins a session that was unmasked before (its digest is remembered with its
  reveal);
* it reveals shares for an update (the same bytes) over one survivor set only: unmasking
  the round over all silos and then "redoing" it without silo u would give u's update by
  subtraction. Retraining from the same global model gives the same update (the DP seeds
  are the silo's, see fl_jobs.silo.silo_secret), so this holds across attempts, sessions, run
  ids, restarts and resumes. Revealing the same survivor set again gives nothing new (the
  same sum), so a rerun of the same job still works;
* it reveals one round of one run over one survivor set only, whatever the update: a redo
  of the round from a slightly perturbed global model (new bytes, nearly the same updates)
  without silo u would give u's update by subtraction too.

Before it reveals, a silo also runs the consistency check of Bonawitz et al. 2017 (round 3):
it signs the survivor set it was shown (Ed25519, key in its own store, public key published
there, where only the silo writes) and reveals only when at least ``threshold`` survivors'
signatures on that same set verify against the keys they published, so an orchestrator that
shows different silos different survivor sets (a split view) is caught.

Each silo also signs, with its masked update, the digest of the global model it trained
from, and reveals only when every survivor's signature is on its own model's digest. An
orchestrator that sends silo u the real model and the others one whose updates it knows
(model inconsistency, Pasquini et al., CCS 2022) gets no reveal; with the train settings
checked against the silo's own strategy (``train-settings-not-own``), every update in a sum
comes from one model and one set of settings.

Left to DP (docs/secure-aggregation.md, "What the orchestrator learns"): an orchestrator
that publishes, as the *next* round's model, one that is not the aggregate of this round
(this round's, perturbed) and leaves u out can difference the two rounds' sums. A silo cannot
check the aggregate without every masked input; each of its releases is in its DP ledger.

The memory is appended to the silo's own store (fl_jobs.silo.silo_store) before the reply leaves,
so it survives a restart. Refusals carry a fixed reason code (:data:`REASONS`) and no value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fl_jobs.errors import SecureAggregationError
from fl_jobs.secure_aggregation.encoding import FixedPointCodec
from fl_jobs.secure_aggregation.keys import PublicKeys
from fl_jobs.secure_aggregation.session import (
    SecureAggregationSession,
    encode_fields,
    majority,
    public_max_samples,
)
from fl_jobs.silo.silo_store import SiloStore

if TYPE_CHECKING:
    from fl_jobs.config import JobConfig

MEMORY_RECORD = "secagg-memory.jsonl"

#: Reason codes of a silo's refusal (the detail stays in the silo).
REASONS = {
    "session-forged": "the session's fields do not give its digest",
    "session-unknown-silo": "the session lists a silo this silo was not configured with",
    "session-threshold-below-floor": "the threshold is below the silo's floor",
    "session-cohort-below-minimum": "the session has fewer silos than the silo's minimum",
    "session-bound-not-public": "the session's max_samples is not the public bound for its "
    "silos and encoding",
    "session-codec-not-own": "the session's encoding (clip, fraction bits) is not the one of "
    "the silo's own configuration",
    "session-replayed": "this session was unmasked before",
    "session-other-run": "the session is for a run this silo does not serve",
    "session-other-round": "the session is for another round than the one this silo trained",
    "update-already-unmasked": "this update was unmasked before over other survivors",
    "round-already-unmasked": "this round was unmasked before over other survivors",
    "train-settings-not-own": "the round's train settings are not those of the silo's own "
    "configuration",
    "model-inconsistent": "a survivor did not sign that it trained from this silo's global model",
    "consistency-check-failed": "too few survivors signed the survivor set shown to this silo",
    "split-already-signed": "this silo already signed another split in this session",
    "peer-key-unauthenticated": "a peer's X25519 keys are not signed by the key it published",
}


class GuardRefusal(SecureAggregationError):
    """A session the silo will not join; ``code`` is one of :data:`REASONS`."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"{code}: {REASONS[code]}", "see docs/secure-aggregation.md")


@dataclass(frozen=True)
class SessionPolicy:
    """A silo's own rules for sessions, from its own configuration."""

    silos: frozenset[str]
    #: Smallest threshold, and smallest number of silos in a session.
    floor: int
    #: The run this silo serves; sessions of any other run are refused (None: any run).
    run_id: str | None = None
    #: The encoding the silo's own configuration sets (its clip and fraction bits): another
    #: one would set another sample bound or clip, and refusals under it would answer the
    #: orchestrator's questions about the silo's count or weights (None: any).
    codec: FixedPointCodec | None = None
    #: Fewest silos in a session beyond the floor: with distributed silo-level DP, the
    #: cohort its noise share is split over (a smaller sum has too little noise).
    min_session: int = 0

    @classmethod
    def for_cohort(
        cls,
        silos: Iterable[str],
        per_round: int,
        run_id: str | None = None,
        *,
        codec: FixedPointCodec | None = None,
        min_session: int = 0,
    ) -> SessionPolicy:
        """A majority of the ``per_round`` silos the configuration plans, at least 2."""
        floor = max(2, majority(per_round))
        return cls(frozenset(silos), floor, run_id, codec, min_session)

    @classmethod
    def of_config(
        cls, config: JobConfig, silos: Iterable[str], per_round: int, run_id: str | None
    ) -> SessionPolicy:
        """The policy of a silo whose own job configuration is ``config``."""
        from fl_jobs.silo.silo_dp import min_cohort, silo_dp_on

        distributed = silo_dp_on(config) and config.privacy.dp_silo_noise == "distributed"
        return cls.for_cohort(
            silos,
            per_round,
            run_id,
            codec=FixedPointCodec(clip=config.secure_aggregation.clip),
            min_session=min_cohort(config) if distributed else 0,
        )


def session_policy(config: JobConfig) -> SessionPolicy:
    """The policy a silo derives from its own job configuration: the configured silos and a
    majority of the cohort planned per round (``fraction`` of ``silos``)."""
    from fl_jobs.local.prepare import silo_names
    from fl_jobs.strategies.client_fraction import silos_per_round

    per_round = silos_per_round(config.federation.fraction, config.federation.silos)
    names = silo_names(config.federation.silos)
    return SessionPolicy.of_config(config, names, per_round, run_identity(config))


def run_identity(config: JobConfig) -> str | None:
    """The run a local job's sessions belong to, as its start recorded it in the run folder
    (fl_jobs.local.run_identity); None outside a run folder."""
    from pathlib import Path

    from fl_jobs.local.run_identity import recorded_run_id

    return None if config.run.output_dir is None else recorded_run_id(Path(config.run.output_dir))


def update_digest(weights: Mapping[str, torch.Tensor], n_samples: int) -> str:
    """sha256 of a trained update (names, dtypes, shapes, bytes, and the sample count)."""
    digest = hashlib.sha256(str(n_samples).encode())
    for name in sorted(weights):
        tensor = weights[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def model_digest(weights: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a global model (names, dtypes, shapes, bytes): what a silo trained from."""
    return update_digest(weights, 0)


SIGNING_KEY_RECORD = "signing.key"
SIGNING_PUBLIC_RECORD = "signing.pub"

#: Where a silo finds a peer's published signing key (its raw Ed25519 public bytes).
Directory = Callable[[str], "bytes | None"]


def consistency_message(
    session: SecureAggregationSession, survivors: Iterable[str], dropped: Iterable[str]
) -> bytes:
    """What a silo signs: the session digest and the split it was shown (in session order)."""
    alive = sorted(survivors, key=session.index)
    gone = sorted(dropped, key=session.index)
    return encode_fields("consistency", session.digest, len(alive), *alive, len(gone), *gone)


def model_message(session: SecureAggregationSession, silo: str, model: str) -> bytes:
    """What a silo signs with its masked update: the session digest, its name and the digest
    of the global model it trained from."""
    return encode_fields("trained-from", session.digest, silo, model)


def keys_message(session: SecureAggregationSession, silo: str, keys: PublicKeys) -> bytes:
    """What a silo signs over its X25519 public keys: the session digest, its name, the keys."""
    return encode_fields("x25519-keys", session.digest, silo, keys.mask, keys.share)


class SessionGuard:
    """One silo's checks and memory (see the module docstring)."""

    def __init__(
        self, silo: str, policy: SessionPolicy, store: SiloStore, directory: Directory
    ) -> None:
        self.silo = silo
        self.policy = policy
        self.store = store
        self.directory = directory
        self._signing = self._signing_key()
        #: The split this silo signed in each session (it signs one split per session).
        self._signed: dict[bytes, bytes] = {}

    def _signing_key(self) -> Ed25519PrivateKey:
        """The silo's Ed25519 key, made on first use; its public half is published."""
        raw = self.store.read(SIGNING_KEY_RECORD)
        if raw is None:
            self.store.create(SIGNING_KEY_RECORD, Ed25519PrivateKey.generate().private_bytes_raw())
            raw = self.store.read(SIGNING_KEY_RECORD)
        key = Ed25519PrivateKey.from_private_bytes(raw or b"")
        public = key.public_key().public_bytes_raw()
        if self.store.read(SIGNING_PUBLIC_RECORD) != public:
            self.store.create(SIGNING_PUBLIC_RECORD, public)
        return key

    def sign_survivors(
        self, session: SecureAggregationSession, survivors: Iterable[str], dropped: Iterable[str]
    ) -> bytes:
        """Round 3: this silo's signature on the split it was shown."""
        alive, gone = list(survivors), list(dropped)
        session.check_partition(alive, gone)
        message = consistency_message(session, alive, gone)
        if self._signed.setdefault(session.digest, message) != message:
            raise GuardRefusal("split-already-signed")
        return self._signing.sign(message)

    def sign_model(self, session: SecureAggregationSession, model: str) -> bytes:
        """This silo's signature on the global model it trained from, sent with its masked
        update."""
        return self._signing.sign(model_message(session, self.silo, model))

    def check_models(
        self,
        session: SecureAggregationSession,
        survivors: Iterable[str],
        attestations: Mapping[str, bytes],
        model: str,
    ) -> None:
        """Every survivor (every update in the sum) signed that it trained from ``model``,
        the global model this silo trained from (GuardRefusal ``model-inconsistent`` if
        not): a sum mixing updates from models the orchestrator chose per silo could
        single one out."""
        for peer in survivors:
            if not self._signed_by(
                peer, attestations.get(peer), model_message(session, peer, model)
            ):
                raise GuardRefusal("model-inconsistent")

    def _signed_by(self, peer: str, signature: bytes | None, message: bytes) -> bool:
        """``signature`` is ``peer``'s on ``message``, by the key ``peer`` published."""
        published = self.directory(peer)
        if signature is None or published is None:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(published).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def sign_keys(self, session: SecureAggregationSession, keys: PublicKeys) -> bytes:
        """This silo's signature on the X25519 keys it advertises in ``session``."""
        return self._signing.sign(keys_message(session, self.silo, keys))

    def check_peer_keys(
        self,
        session: SecureAggregationSession,
        public_keys: Mapping[str, PublicKeys],
        signatures: Mapping[str, bytes],
    ) -> None:
        """Every peer's keys are signed by the key that peer published in its own store
        (GuardRefusal ``peer-key-unauthenticated`` otherwise): a key the orchestrator
        substituted gets no mask agreed with it."""
        for peer, keys in public_keys.items():
            if not self._signed_by(peer, signatures.get(peer), keys_message(session, peer, keys)):
                raise GuardRefusal("peer-key-unauthenticated")

    def check_signatures(
        self,
        session: SecureAggregationSession,
        survivors: Iterable[str],
        dropped: Iterable[str],
        signatures: Mapping[str, bytes],
    ) -> None:
        """At least ``threshold`` survivors signed this very split (GuardRefusal if not)."""
        alive = list(survivors)
        message = consistency_message(session, alive, dropped)
        valid = sum(self._signed_by(peer, signatures.get(peer), message) for peer in alive)
        if valid < session.threshold:
            raise GuardRefusal("consistency-check-failed")

    @staticmethod
    def check_train_settings(sent: Mapping[str, float], own: Mapping[str, float]) -> None:
        """The round's per-silo settings are the ones the silo's own strategy gives
        (GuardRefusal ``train-settings-not-own`` if not): settings chosen per silo, such as
        a huge proximal term for every silo but u, would make the others' updates known
        and u's readable in the sum."""
        if dict(sent) != dict(own):
            raise GuardRefusal("train-settings-not-own")

    def _memory(self) -> list[dict[str, Any]]:
        raw = self.store.read(MEMORY_RECORD) or b""
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def accept(
        self, session: SecureAggregationSession, update: str, round: int, model: str
    ) -> None:
        """Join ``session`` for the update of digest ``update``, trained in ``round`` from
        the global model of digest ``model``, or raise GuardRefusal."""
        try:
            rebuilt = SecureAggregationSession(
                session.run_id,
                session.round,
                list(session.silos),
                max_samples=session.max_samples,
                threshold=session.threshold,
                attempt=session.attempt,
                codec=session.codec,
            )
        except SecureAggregationError:
            raise GuardRefusal("session-forged") from None
        if rebuilt.digest != session.digest:
            raise GuardRefusal("session-forged")
        if self.policy.run_id is not None and rebuilt.run_id != self.policy.run_id:
            raise GuardRefusal("session-other-run")
        if rebuilt.round != round:
            raise GuardRefusal("session-other-round")
        if not set(rebuilt.silos) <= self.policy.silos or self.silo not in rebuilt.silos:
            raise GuardRefusal("session-unknown-silo")
        if len(rebuilt.silos) < max(self.policy.floor, self.policy.min_session):
            raise GuardRefusal("session-cohort-below-minimum")
        if self.policy.codec is not None and rebuilt.codec != self.policy.codec:
            raise GuardRefusal("session-codec-not-own")
        if rebuilt.threshold < self.policy.floor:
            raise GuardRefusal("session-threshold-below-floor")
        # A bound chosen per session could probe the silo's count (a refusal says whether it
        # is above); the public bound depends on the silo count and encoding only.
        if rebuilt.max_samples != public_max_samples(rebuilt.codec, len(rebuilt.silos)):
            raise GuardRefusal("session-bound-not-public")
        digest = rebuilt.digest.hex()
        if any(m["event"] == "revealed" and m["session"] == digest for m in self._memory()):
            raise GuardRefusal("session-replayed")
        self._remember("accepted", rebuilt, update, model, ())

    def revealing(
        self, session: SecureAggregationSession, update: str, model: str, survivors: Iterable[str]
    ) -> None:
        """Allow a reveal for ``survivors`` (GuardRefusal if this update, or this round of
        this run, was revealed over another set) and record it before the reveal leaves."""
        alive = sorted(survivors)
        for m in self._memory():
            if m["event"] != "revealed" or m["survivors"] == alive:
                continue
            if m["update"] == update:
                raise GuardRefusal("update-already-unmasked")
            if (m["run_id"], m["round"]) == (session.run_id, session.round):
                raise GuardRefusal("round-already-unmasked")
        self._remember("revealed", session, update, model, alive)

    def _remember(
        self,
        event: str,
        session: SecureAggregationSession,
        update: str,
        model: str,
        survivors: Iterable[str],
    ) -> None:
        line = {
            "event": event,
            "session": session.digest.hex(),
            "run_id": session.run_id,
            "round": session.round,
            "attempt": session.attempt,
            "update": update,
            "model": model,
            "survivors": sorted(survivors),
        }
        self.store.append(MEMORY_RECORD, json.dumps(line, sort_keys=True).encode())
