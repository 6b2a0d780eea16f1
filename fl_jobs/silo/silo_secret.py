"""Silo-held randomness: the seeds of a silo's DP-SGD noise and Poisson sampling come from a
secret the silo generates and keeps in its own store, never from the orchestrator alone.

The orchestrator's train request still carries a seed (``derive_seed(job seed, round,
silo)``), but the local worker ignores it for DP: it computes ``HMAC-SHA256(secret, label ||
digest of the global model || round)``, so an orchestrator that varies the request seed gets
no fresh noise on the same model (fresh noise would give it several releases of one round to
average, or a second update to unmask over another survivor set).
Whoever lacks the secret - the orchestrator included - cannot replay the silo's training on
``D`` and on ``D`` minus one record to see which one matches, so the noise is noise to them.
The silo keeps its secret, so a resumed run trains bit-identically to an uninterrupted one.

Why HMAC-seeded torch generators and not Opacus ``secure_mode``: ``secure_mode`` needs
``torchcsprng``, which has no release for the torch this project pins. The noise and the
sampling are drawn by torch's generators seeded with 63 bits of the HMAC output; the HMAC
keeps the seed unpredictable without the secret (256 bits from :func:`secrets.token_bytes`).
What remains open (docs/fl-jobs.md): the seed space is 63 bits, not 128; torch's generator
is not a CSPRNG (its state could in principle be inferred from many raw outputs, which the
silo never releases raw); and the floating-point attack on Gaussian sampling that
``secure_mode`` also counters is not addressed.

A redo of a round (same global model) gets the same noise on purpose: fresh noise per
attempt would let the orchestrator average several noisy releases of one round.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct

from fl_jobs.silo.silo_store import SiloStore

SECRET_RECORD = "secret.key"
_SECRET_BYTES = 32


def silo_secret(store: SiloStore) -> bytes:
    """The silo's secret, generated on first use and kept in its store from then on."""
    existing = store.read(SECRET_RECORD)
    if existing is None:
        store.create(SECRET_RECORD, secrets.token_bytes(_SECRET_BYTES))
        existing = store.read(SECRET_RECORD)
    if existing is None or len(existing) != _SECRET_BYTES:
        raise ValueError(f"the silo's {SECRET_RECORD} is damaged (expected {_SECRET_BYTES} bytes)")
    return existing


def private_seeds(secret: bytes, context: int, round_: int) -> tuple[int, int]:
    """``(sampling seed, noise seed)`` of one round's DP-SGD: 63-bit values of HMAC-SHA256
    under the silo's secret, one label each, so neither is computable without the secret;
    ``context`` is 64 bits of what is trained (the worker: the global model's digest)."""

    def one(label: bytes) -> int:
        message = label + struct.pack(">QQ", context & (2**64 - 1), round_)
        digest = hmac.new(secret, message, hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    return one(b"fl-sandbox/dp-sampling/v1"), one(b"fl-sandbox/dp-noise/v1")


def metric_seed(secret: bytes, context: int, round_: int) -> int:
    """The seed of one round's noised silo metrics (``--silo-metrics dp``), as
    :func:`private_seeds` under its own label."""
    message = b"fl-sandbox/dp-metrics/v1" + struct.pack(">QQ", context & (2**64 - 1), round_)
    return int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big") >> 1
