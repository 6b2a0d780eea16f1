"""The orchestrator's side: a streaming sum of masked updates, unmasked once the round ends.

Like ``fl_jobs.core.aggregation.StreamingWeightedMean``, each masked vector is added into one
accumulator as it arrives (uint64, wrapping mod 2^64) and can be freed right after; the
orchestrator holds one encoded model however many silos send. It never sees an unmasked
update: when the round closes, the survivors' reveals give it each survivor's self-mask seed
and each dropped silo's mask key, which are exactly the masks left in the sum; removing them
leaves the encoded weighted sum, decoded to the weighted mean in the model's dtypes. Each
silo's sample count is one more masked element of its vector, so only the round's total
count appears, after unmasking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fl_jobs.errors import ModelUpdateError, SecureAggregationError
from fl_jobs.secure_aggregation import shamir
from fl_jobs.secure_aggregation.key_agreement import (
    pair_mask_seed,
    self_mask_commitment,
    self_mask_seed,
)
from fl_jobs.secure_aggregation.keys import PublicKeys, parse_public_key, raw_public
from fl_jobs.secure_aggregation.layout import ModelLayout
from fl_jobs.secure_aggregation.mask_stream import apply_masks
from fl_jobs.secure_aggregation.messages import WEIGHT_SLOTS, MaskedUpdate, Reveal
from fl_jobs.secure_aggregation.peer_keys import check_peer_keys
from fl_jobs.secure_aggregation.session import SecureAggregationSession

COMMITMENT_BYTES = 32


class MaskedSum:
    """Sum of one session's masked updates; ``template`` is the round's global model (its
    tensors fix the layout), ``public_keys`` the keys every silo advertised."""

    def __init__(
        self,
        session: SecureAggregationSession,
        public_keys: Mapping[str, PublicKeys],
        template: Mapping[str, torch.Tensor],
    ) -> None:
        self.session = session
        self.public_keys = check_peer_keys(session, public_keys)
        self.layout = ModelLayout.of(template)
        self._size = self.layout.size + WEIGHT_SLOTS
        self._sum: np.ndarray | None = np.zeros(self._size, dtype=np.uint64)
        self._received: dict[str, bytes] = {}
        #: The contributors' summed sample count, known once :meth:`finish` unmasks it.
        self.total_samples: int | None = None

    @property
    def contributors(self) -> tuple[str, ...]:
        """Silos whose masked update was added, in session order."""
        return tuple(s for s in self.session.silos if s in self._received)

    @property
    def missing(self) -> tuple[str, ...]:
        """Silos of the session with no masked update (yet): the dropped ones at the end."""
        return tuple(s for s in self.session.silos if s not in self._received)

    def add(self, update: MaskedUpdate) -> None:
        """Fold one masked update into the sum (checked: session, silo, model layout, vector
        length and dtype; its sample count is masked, checked in total by :meth:`finish`)."""
        total = self._open_sum()
        if not isinstance(update, MaskedUpdate):
            raise SecureAggregationError(
                f"expected a MaskedUpdate, got a {type(update).__name__}",
                "send what SecureAggregationClient.masked_update returned",
            )
        who = f"the masked update of {update.silo}"
        update.tag.check(self.session, who)
        self.session.index(update.silo)
        if update.silo in self._received:
            raise SecureAggregationError(
                f"{who} arrived twice in {self.session.label}", "add each silo's update once"
            )
        self.layout.check_same(update.layout, who)
        vector = update.vector
        if (
            not isinstance(vector, np.ndarray)
            or vector.dtype != np.uint64
            or vector.shape != (self._size,)
        ):
            shape = getattr(vector, "shape", None)
            raise ModelUpdateError(
                f"{who} holds a {getattr(vector, 'dtype', type(vector).__name__)} vector of "
                f"shape {shape}, expected uint64 of ({self._size:,},) for this model and its "
                "weight",
                "the vector was truncated or altered in transit: the silo must resend it",
            )
        commitment = update.self_mask_commitment
        if not isinstance(commitment, bytes) or len(commitment) != COMMITMENT_BYTES:
            raise SecureAggregationError(
                f"{who} has no valid self-mask commitment", "send the update unchanged"
            )
        np.add(total, vector, out=total)
        self._received[update.silo] = commitment

    def finish(self, reveals: Iterable[Reveal]) -> dict[str, torch.Tensor]:
        """Unmask with the survivors' ``reveals`` (at least the threshold's number, each made
        for survivors = :attr:`contributors` and dropped = :attr:`missing`) and return the
        weighted mean of the contributors' updates. The sum is consumed."""
        total = self._open_sum()
        session = self.session
        survivors, dropped = self.contributors, self.missing
        session.check_partition(survivors, dropped)
        chosen = self._check_reveals(list(reveals), survivors, dropped)
        xs = [session.index(r.silo) + 1 for r in chosen]
        weights = shamir.lagrange_at_zero(xs)
        masks: list[tuple[bytes, int]] = []
        for silo in survivors:
            secret = shamir.combine(
                {x: r.self_mask_shares[silo] for x, r in zip(xs, chosen, strict=True)}, weights
            )
            if self_mask_commitment(secret, session, silo) != self._received[silo]:
                raise SecureAggregationError(
                    f"the self-mask secret of {silo} rebuilt from the shares of "
                    f"{', '.join(r.silo for r in chosen)} does not match its commitment",
                    "a reveal was altered or made for another session: redo the round",
                )
            masks.append((self_mask_seed(secret, session, silo), -1))
        for gone in dropped:
            raw = shamir.combine(
                {x: r.mask_key_shares[gone] for x, r in zip(xs, chosen, strict=True)}, weights
            )
            key = X25519PrivateKey.from_private_bytes(raw)
            if raw_public(key) != self.public_keys[gone].mask:
                raise SecureAggregationError(
                    f"the mask key of dropped silo {gone} rebuilt from the shares of "
                    f"{', '.join(r.silo for r in chosen)} does not match its public key",
                    "a reveal was altered or made for another session: redo the round",
                )
            for silo in survivors:
                peer = parse_public_key(self.public_keys[silo].mask, f"{silo}'s mask key")
                seed = pair_mask_seed(key, peer, session, gone, silo)
                added = 1 if session.index(gone) > session.index(silo) else -1
                masks.append((seed, -added))
        apply_masks(total, masks)
        self._sum = None
        count = int(total[self.layout.size])
        most = len(survivors) * session.max_samples
        if not 1 <= count <= most:
            raise SecureAggregationError(
                f"the unmasked sample count of {session.label} is {count:,}, outside 1.."
                f"{most:,} ({len(survivors)} silos of at most {session.max_samples:,}): a silo "
                "masked a count it does not hold, and the sum's weights cannot be trusted",
                "redo the round; a silo that does it again is faulty",
            )
        self.total_samples = count
        return self.layout.decode(total[: self.layout.size], count, session.codec)

    def _open_sum(self) -> np.ndarray:
        if self._sum is None:
            raise SecureAggregationError(
                f"the masked sum of {self.session.label} was finished",
                "start a new MaskedSum for the next round or attempt",
            )
        return self._sum

    def _check_reveals(
        self, reveals: list[Reveal], survivors: tuple[str, ...], dropped: tuple[str, ...]
    ) -> list[Reveal]:
        """The first ``threshold`` valid reveals in session order."""
        session = self.session
        by_silo: dict[str, Reveal] = {}
        for reveal in reveals:
            who = f"the reveal of {reveal.silo}"
            reveal.tag.check(session, who)
            if reveal.silo not in survivors:
                raise SecureAggregationError(
                    f"{who} came from a silo that sent no masked update",
                    "ask the survivors (contributors) only",
                )
            if reveal.silo in by_silo:
                raise SecureAggregationError(f"{who} arrived twice", "pass each reveal once")
            if (tuple(reveal.survivors), tuple(reveal.dropped)) != (survivors, dropped):
                raise SecureAggregationError(
                    f"{who} was made for survivors {list(reveal.survivors)}, but the sum "
                    f"holds {list(survivors)}",
                    "ask every survivor with survivors=contributors, dropped=missing",
                )
            if set(reveal.self_mask_shares) != set(survivors) or set(reveal.mask_key_shares) != set(
                dropped
            ):
                raise SecureAggregationError(
                    f"{who} does not hold one share per survivor and per dropped silo",
                    "send the reveal unchanged",
                )
            by_silo[reveal.silo] = reveal
        if len(by_silo) < session.threshold:
            raise SecureAggregationError(
                f"{len(by_silo)} of {len(survivors)} survivors revealed their shares in "
                f"{session.label} and unmasking needs {session.threshold}",
                "wait for more survivors, or redo the round without the silos that are gone "
                "(session.without(...))",
            )
        ordered = [by_silo[s] for s in survivors if s in by_silo]
        return ordered[: session.threshold]
