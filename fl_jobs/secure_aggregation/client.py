"""A silo's side of one session: advertise keys, share secrets, mask once, reveal once.

The order is fixed (Bonawitz et al. 2017, honest-but-curious variant): a silo masks only
after it holds every peer's shares, so any peer that drops later can be unmasked by the
survivors; it masks exactly once per session, so two masked vectors under the same masks
never exist; and it answers one unmasking request per session, giving for each silo either
its self-mask share (a survivor) or its mask-key share (a dropped silo), never both.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
import torch

from fl_jobs.errors import SecureAggregationError
from fl_jobs.secure_aggregation import shamir
from fl_jobs.secure_aggregation.key_agreement import (
    pair_mask_seed,
    self_mask_commitment,
    self_mask_seed,
    share_key,
)
from fl_jobs.secure_aggregation.keys import PublicKeys, SiloKeys, parse_public_key
from fl_jobs.secure_aggregation.layout import ModelLayout
from fl_jobs.secure_aggregation.mask_stream import apply_masks
from fl_jobs.secure_aggregation.messages import (
    WEIGHT_SLOTS,
    MaskedUpdate,
    Reveal,
    SessionTag,
    ShareBundle,
)
from fl_jobs.secure_aggregation.peer_keys import check_peer_keys
from fl_jobs.secure_aggregation.session import SecureAggregationSession
from fl_jobs.secure_aggregation.share_encryption import open_bundle, seal

SELF_MASK_SECRET_BYTES = 32


def check_sample_count(session: SecureAggregationSession, n_samples: object, who: str) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise SecureAggregationError(
            f"{who}: n_samples must be a whole number >= 1, got {n_samples!r}",
            "report the number of training samples",
        )
    if n_samples > session.max_samples:
        # No value in the message: it reaches the orchestrator, which must not learn n.
        raise SecureAggregationError(
            f"{who}: the silo's sample count exceeds the session's max_samples="
            f"{session.max_samples:,}, on which the overflow check relies",
            "lower --secure-aggregation-clip (the bound is 2^63 / (silos x clip x 2^28)), or "
            "split the silo's data",
        )
    return n_samples


class SecureAggregationClient:
    """One silo in one session. ``keys`` and ``self_mask_secret`` default to fresh random
    ones; pass them only to replay a round (the same keys and secret give the same masks)."""

    def __init__(
        self,
        session: SecureAggregationSession,
        silo: str,
        *,
        keys: SiloKeys | None = None,
        self_mask_secret: bytes | None = None,
    ) -> None:
        session.index(silo)
        self.session = session
        self.silo = silo
        self.keys = keys if keys is not None else SiloKeys.generate()
        secret = self_mask_secret if self_mask_secret is not None else os.urandom(32)
        if not isinstance(secret, bytes) or len(secret) != SELF_MASK_SECRET_BYTES:
            raise SecureAggregationError(
                f"self_mask_secret must be {SELF_MASK_SECRET_BYTES} bytes",
                "leave it out (a fresh random one is made)",
            )
        self._secret = secret
        self._peers: dict[str, PublicKeys] | None = None
        self._held: dict[str, tuple[int, int]] = {}
        self._ready = False
        self._masked = False
        self._revealed: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    @property
    def public_keys(self) -> PublicKeys:
        """What this silo advertises (through the orchestrator) to its peers."""
        return self.keys.public

    def share_secrets(self, public_keys: Mapping[str, PublicKeys]) -> dict[str, ShareBundle]:
        """Shamir-share the self-mask secret and the mask private key; one sealed bundle per
        peer (recipient -> bundle) for the orchestrator to relay. ``public_keys`` must hold
        every silo of the session, this one included."""
        if self._peers is not None:
            raise SecureAggregationError(
                f"{self.silo} already shared its secrets in {self.session.label}",
                "share once per session; a redo is a new session (session.without(...))",
            )
        peers = check_peer_keys(self.session, public_keys)
        if peers[self.silo] != self.public_keys:
            raise SecureAggregationError(
                f"the public keys listed for {self.silo} are not the ones it advertised",
                "relay each silo's PublicKeys unchanged",
            )
        session, n = self.session, len(self.session.silos)
        self_shares = shamir.split(self._secret, n, session.threshold)
        key_shares = shamir.split(self.keys.mask_private_bytes(), n, session.threshold)
        me = session.index(self.silo)
        self._held[self.silo] = (self_shares[me], key_shares[me])
        bundles = {}
        for peer, keys in peers.items():
            if peer == self.silo:
                continue
            key = share_key(
                self.keys.share,
                parse_public_key(keys.share, f"the share public key of {peer}"),
                session,
                sender=self.silo,
                recipient=peer,
            )
            i = session.index(peer)
            bundles[peer] = seal(key, session, self.silo, peer, self_shares[i], key_shares[i])
        self._peers = peers
        return bundles

    def receive_shares(self, bundles: Iterable[ShareBundle]) -> None:
        """Open the bundles every peer sent this silo; all peers must be there."""
        if self._peers is None:
            raise SecureAggregationError(
                f"{self.silo} received shares before sharing its own",
                "call share_secrets(public_keys) first",
            )
        if self._ready:
            raise SecureAggregationError(
                f"{self.silo} already received its shares in {self.session.label}",
                "deliver each silo's bundles once",
            )
        held = dict(self._held)
        for bundle in bundles:
            if bundle.recipient != self.silo:
                raise SecureAggregationError(
                    f"{self.silo} got the share bundle {bundle.sender} -> {bundle.recipient}",
                    "deliver each bundle to its recipient",
                )
            self.session.index(bundle.sender)
            if bundle.sender in held:
                raise SecureAggregationError(
                    f"{self.silo} got two share bundles from {bundle.sender}",
                    "deliver each bundle once",
                )
            key = share_key(
                self.keys.share,
                parse_public_key(
                    self._peers[bundle.sender].share, f"the share public key of {bundle.sender}"
                ),
                self.session,
                sender=bundle.sender,
                recipient=self.silo,
            )
            held[bundle.sender] = open_bundle(key, self.session, bundle)
        missing = [s for s in self.session.silos if s not in held]
        if missing:
            raise SecureAggregationError(
                f"{self.silo} has no shares from {', '.join(missing)} in {self.session.label}",
                "a silo that did not share its secrets cannot be in the round: redo it "
                "without that silo (session.without(...))",
            )
        self._held = held
        self._ready = True

    def masked_update(self, weights: Mapping[str, torch.Tensor], n_samples: int) -> MaskedUpdate:
        """The silo's update ``weights`` (its trained model) weighted by ``n_samples``,
        fixed-point encoded and masked with its self-mask and every pairwise mask."""
        if not self._ready or self._peers is None:
            raise SecureAggregationError(
                f"{self.silo} cannot mask before it holds every peer's shares",
                "call share_secrets(...) and receive_shares(...) first",
            )
        if self._masked:
            raise SecureAggregationError(
                f"{self.silo} already sent a masked update in {self.session.label}; a second "
                "one under the same masks would reveal the difference of the two updates",
                "redo the round as a new session (session.without(...)), which has new masks",
            )
        session = self.session
        who = f"{self.silo}'s update"
        n = check_sample_count(session, n_samples, who)
        layout = ModelLayout.of(weights)
        vector = np.empty(layout.size + WEIGHT_SLOTS, dtype=np.uint64)
        layout.encode(weights, n, session.codec, source=who, out=vector)
        vector[layout.size] = n  # masked with the rest: only the round's total is revealed
        me = session.index(self.silo)
        masks = [(self_mask_seed(self._secret, session, self.silo), 1)]
        for peer, keys in self._peers.items():
            if peer == self.silo:
                continue
            peer_key = parse_public_key(keys.mask, f"the mask public key of {peer}")
            seed = pair_mask_seed(self.keys.mask, peer_key, session, self.silo, peer)
            masks.append((seed, 1 if session.index(peer) > me else -1))
        apply_masks(vector, masks)
        self._masked = True
        return MaskedUpdate(
            tag=SessionTag.of(session),
            silo=self.silo,
            layout=layout,
            vector=vector,
            self_mask_commitment=self_mask_commitment(self._secret, session, self.silo),
        )

    def reveal(self, survivors: Iterable[str], dropped: Iterable[str]) -> Reveal:
        """This silo's shares for unmasking: of the self-mask secret of every survivor (the
        silos whose masked updates the orchestrator summed) and of the mask private key of
        every dropped silo. Answered for one split of the silos only."""
        if not self._ready:
            raise SecureAggregationError(
                f"{self.silo} holds no shares in {self.session.label}",
                "only silos that received their shares take part in unmasking",
            )
        alive, gone = tuple(survivors), tuple(dropped)
        self.session.check_partition(alive, gone)
        if self.silo not in alive:
            raise SecureAggregationError(
                f"{self.silo} was asked to reveal shares while listed as dropped",
                "ask the survivors only",
            )
        order = self.session.index
        split = (tuple(sorted(alive, key=order)), tuple(sorted(gone, key=order)))
        if self._revealed is not None and self._revealed != split:
            raise SecureAggregationError(
                f"{self.silo} already revealed shares for survivors "
                f"{list(self._revealed[0])} in {self.session.label}; revealing for another "
                "split could unmask a silo's update",
                "unmask once per session; redo the round as a new session if it failed",
            )
        self._revealed = split
        return Reveal(
            tag=SessionTag.of(self.session),
            silo=self.silo,
            survivors=split[0],
            dropped=split[1],
            self_mask_shares={s: self._held[s][0] for s in split[0]},
            mask_key_shares={d: self._held[d][1] for d in split[1]},
        )
