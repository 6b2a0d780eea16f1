"""Pairwise secrets: X25519 agreement, then HKDF-SHA256 bound to the session and the pair.

Every derived key names its purpose (a label), the session digest (run, round, attempt,
silos, encoding) and the silos it is for, so no key serves two purposes, two pairs or two
sessions. Mask seeds are symmetric (both silos of a pair derive the same one); share
encryption keys are per direction (sender then recipient).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fl_jobs.errors import SecureAggregationError
from fl_jobs.secure_aggregation.session import SecureAggregationSession, encode_fields

SEED_BYTES = 32
PAIR_MASK = "pair-mask"
SHARE_KEY = "share-encryption"
SELF_MASK = "self-mask"
SELF_MASK_COMMITMENT = "self-mask-commitment"


def derive(secret: bytes, label: str, session: SecureAggregationSession, *names: str) -> bytes:
    """32 bytes of HKDF-SHA256 output from ``secret`` for ``label`` in ``session``."""
    info = encode_fields(label, session.digest, *names)
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info).derive(secret)


def agree(private: X25519PrivateKey, peer: X25519PublicKey, pair: str) -> bytes:
    """The raw X25519 shared secret; a low-order (all-zero result) peer key is refused."""
    try:
        return private.exchange(peer)
    except ValueError:
        raise SecureAggregationError(
            f"key agreement {pair} failed: a public key is a low-order point",
            "every silo must advertise the public keys SiloKeys.generate() made",
        ) from None


def pair_mask_seed(
    private: X25519PrivateKey,
    peer: X25519PublicKey,
    session: SecureAggregationSession,
    me: str,
    peer_name: str,
) -> bytes:
    """The seed of the mask shared by ``me`` and ``peer_name`` (the same on both sides)."""
    first, second = sorted((me, peer_name), key=session.index)
    return derive(agree(private, peer, f"{first}/{second}"), PAIR_MASK, session, first, second)


def share_key(
    private: X25519PrivateKey,
    peer: X25519PublicKey,
    session: SecureAggregationSession,
    *,
    sender: str,
    recipient: str,
) -> bytes:
    """The AES-256-GCM key for the shares ``sender`` sends to ``recipient`` (``private`` is
    the caller's share key, ``peer`` the other silo's)."""
    return derive(
        agree(private, peer, f"{sender}/{recipient}"), SHARE_KEY, session, sender, recipient
    )


def self_mask_seed(seed: bytes, session: SecureAggregationSession, silo: str) -> bytes:
    """The key of a silo's own mask stream, from its random 32-byte self-mask secret."""
    return derive(seed, SELF_MASK, session, silo)


def self_mask_commitment(seed: bytes, session: SecureAggregationSession, silo: str) -> bytes:
    """A one-way image of the self-mask secret (another HKDF label): sent with the masked
    update so the orchestrator can check the seed it rebuilds from shares; it reveals nothing
    of a uniformly random 32-byte seed."""
    return derive(seed, SELF_MASK_COMMITMENT, session, silo)
