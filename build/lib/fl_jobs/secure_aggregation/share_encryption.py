"""Sealing Shamir shares for one peer: AES-256-GCM under a key only the two silos can derive.

The associated data binds the session digest and the direction (sender, recipient), so the
orchestrator, which relays the bundles, can neither read them nor pass one off as another
pair's or another round's: opening fails.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fl_jobs.errors import SecureAggregationError
from fl_jobs.secure_aggregation.messages import SessionTag, ShareBundle
from fl_jobs.secure_aggregation.session import SecureAggregationSession, encode_fields
from fl_jobs.secure_aggregation.shamir import SHARE_BYTES

NONCE_BYTES = 12


def _associated(session: SecureAggregationSession, sender: str, recipient: str) -> bytes:
    return encode_fields("share-bundle", session.digest, sender, recipient)


def seal(
    key: bytes,
    session: SecureAggregationSession,
    sender: str,
    recipient: str,
    self_mask_share: int,
    mask_key_share: int,
) -> ShareBundle:
    """Encrypt the two shares ``sender`` gives ``recipient``."""
    plaintext = self_mask_share.to_bytes(SHARE_BYTES, "big") + mask_key_share.to_bytes(
        SHARE_BYTES, "big"
    )
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _associated(session, sender, recipient))
    return ShareBundle(SessionTag.of(session), sender, recipient, nonce, ciphertext)


def open_bundle(
    key: bytes, session: SecureAggregationSession, bundle: ShareBundle
) -> tuple[int, int]:
    """The (self-mask share, mask-key share) in ``bundle``, or an error if it was altered,
    misrouted or sealed for another session."""
    bundle.tag.check(session, f"the share bundle {bundle.sender} -> {bundle.recipient}")
    try:
        plaintext = AESGCM(key).decrypt(
            bundle.nonce,
            bundle.ciphertext,
            _associated(session, bundle.sender, bundle.recipient),
        )
    except (InvalidTag, ValueError):
        raise SecureAggregationError(
            f"the share bundle {bundle.sender} -> {bundle.recipient} does not authenticate "
            "(altered in transit, or sealed for another silo or session)",
            "relay the bundles unchanged; redo the round if it persists",
        ) from None
    if len(plaintext) != 2 * SHARE_BYTES:
        raise SecureAggregationError(
            f"the share bundle {bundle.sender} -> {bundle.recipient} holds "
            f"{len(plaintext)} bytes, expected {2 * SHARE_BYTES}",
            "seal bundles with share_encryption.seal",
        )
    return (
        int.from_bytes(plaintext[:SHARE_BYTES], "big"),
        int.from_bytes(plaintext[SHARE_BYTES:], "big"),
    )
