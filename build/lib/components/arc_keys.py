"""The key pair Azure Arc's agents authenticate with, in the formats each side needs.

``az connectedk8s connect`` generates an RSA-4096 key pair: ARM gets the public key as
``agentPublicKeyCertificate``, base64 of its **PKCS#1** DER encoding (it starts
``MIICCgKCAgEA``; the SubjectPublicKeyInfo form, ``MIICIjAN...``, is refused), and the agents
get the private key as a PEM "RSA PRIVATE KEY" in the Helm values. The key must never change
between deployments, so it lives in stack config as a secret; ``python -m blueprints arc-key``
generates one.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 4096


class ArcKeyError(ValueError):
    """A private key Arc onboarding cannot use, with the fix."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.fix = (
            "generate one with `python -m blueprints arc-key` and store it with "
            "`pulumi config set --secret`"
        )


def generate_private_key() -> str:
    """A new RSA-4096 private key as a PEM "RSA PRIVATE KEY" (PKCS#1), what the agents take."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _load(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ArcKeyError(f"not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ArcKeyError(f"a {type(key).__name__} key; Arc's agents need RSA")
    if key.key_size != KEY_BITS:
        raise ArcKeyError(f"an RSA-{key.key_size} key; Arc's agents need RSA-{KEY_BITS}")
    return key


def check_private_key(pem: str) -> None:
    """Raise ArcKeyError unless ``pem`` is an unencrypted RSA-4096 private key."""
    _load(pem)


def agent_private_key_pem(pem: str) -> str:
    """The private key as the agents' chart takes it: PEM "RSA PRIVATE KEY" (PKCS#1)."""
    return (
        _load(pem)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )


def agent_public_key_certificate(pem: str) -> str:
    """The public key as ARM takes it: base64 of the PKCS#1 DER encoding."""
    der = (
        _load(pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    )
    return base64.b64encode(der).decode()
