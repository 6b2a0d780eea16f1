"""A silo's X25519 key pairs for one session, and the public halves it advertises.

Two pairs, as in Bonawitz et al. (2017): the *mask* key agrees the pairwise mask seeds and is
Shamir-shared, so that the survivors can rebuild a dropped silo's masks; the *share* key
encrypts the shares sent to each peer and is never shared. Rebuilding a dropped silo's mask
key therefore does not open the shares other silos sent it. Keys are made fresh for every
session (round attempt) and never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from fl_jobs.errors import SecureAggregationError

KEY_BYTES = 32


def parse_public_key(data: bytes, what: str) -> X25519PublicKey:
    """A raw 32-byte X25519 public key, or an error naming ``what``."""
    if not isinstance(data, bytes | bytearray) or len(data) != KEY_BYTES:
        size = len(data) if isinstance(data, bytes | bytearray) else type(data).__name__
        raise SecureAggregationError(
            f"{what} must be {KEY_BYTES} raw bytes, got {size}",
            "send PublicKeys exactly as the silo produced them",
        )
    return X25519PublicKey.from_public_bytes(bytes(data))


def raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def raw_private(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


@dataclass(frozen=True)
class PublicKeys:
    """What a silo advertises through the orchestrator: two raw X25519 public keys."""

    mask: bytes
    share: bytes

    def __post_init__(self) -> None:
        parse_public_key(self.mask, "the mask public key")
        parse_public_key(self.share, "the share public key")


class SiloKeys:
    """A silo's two private keys for one session (see the module docstring)."""

    def __init__(self, mask: X25519PrivateKey, share: X25519PrivateKey) -> None:
        self.mask = mask
        self.share = share
        self.public = PublicKeys(raw_public(mask), raw_public(share))

    @classmethod
    def generate(cls) -> SiloKeys:
        """Fresh keys from the operating system's CSPRNG (the normal case)."""
        return cls(X25519PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, mask: bytes, share: bytes) -> SiloKeys:
        """Keys from stored raw private keys (32 bytes each), e.g. to replay a round."""
        for what, data in (("mask", mask), ("share", share)):
            if not isinstance(data, bytes | bytearray) or len(data) != KEY_BYTES:
                raise SecureAggregationError(
                    f"the {what} private key must be {KEY_BYTES} raw bytes",
                    "pass keys written by raw_private() or use SiloKeys.generate()",
                )
        return cls(
            X25519PrivateKey.from_private_bytes(bytes(mask)),
            X25519PrivateKey.from_private_bytes(bytes(share)),
        )

    def mask_private_bytes(self) -> bytes:
        """The raw mask private key: the secret Shamir-shared with the peers."""
        return raw_private(self.mask)
