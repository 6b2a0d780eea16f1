"""Shamir secret sharing (t of n) of 32-byte secrets over the prime field of 2^521 - 1.

``cryptography`` has no secret sharing, so this is the textbook scheme (Shamir 1979) and
nothing more: a random polynomial of degree t - 1 with the secret as its constant term,
evaluated at x = 1..n; any t points give the secret back by Lagrange interpolation at 0, and
fewer than t points are consistent with every secret (information-theoretic secrecy, given
uniformly random coefficients, which come from the operating system's CSPRNG via
``secrets``). The field is the Mersenne prime 2^521 - 1, which holds any 256-bit secret.
Sharing gives no integrity: a wrong share gives a wrong secret, which the callers detect
(a rebuilt mask key must match its advertised public key; a rebuilt self-mask seed must match
its commitment).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from fl_jobs.errors import SecureAggregationError

PRIME = 2**521 - 1
SECRET_BYTES = 32
SHARE_BYTES = 66  # 521 bits


def split(secret: bytes, n: int, threshold: int) -> list[int]:
    """Shares of ``secret`` for x = 1..n (the list's i-th item is the share at x = i + 1)."""
    if len(secret) != SECRET_BYTES:
        raise SecureAggregationError(
            f"a shared secret must be {SECRET_BYTES} bytes, got {len(secret)}",
            "share 32-byte keys or seeds",
        )
    if not 2 <= threshold <= n:
        raise SecureAggregationError(
            f"threshold {threshold} must be in 2..{n}", "use a threshold between 2 and n"
        )
    coefficients = [int.from_bytes(secret, "big")]
    coefficients += [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, n + 1):
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares.append(y)
    return shares


def lagrange_at_zero(xs: list[int]) -> list[int]:
    """The weights ``l_j`` with ``f(0) = sum_j l_j f(x_j)`` for distinct nonzero ``xs``
    (computed once and reused for every secret shared over the same points)."""
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise SecureAggregationError(
            f"share coordinates must be distinct and nonzero, got {xs}",
            "combine shares from distinct silos",
        )
    weights = []
    for j, xj in enumerate(xs):
        num, den = 1, 1
        for m, xm in enumerate(xs):
            if m != j:
                num = num * xm % PRIME
                den = den * (xm - xj) % PRIME
        weights.append(num * pow(den, -1, PRIME) % PRIME)
    return weights


def combine(points: Mapping[int, int], weights: list[int] | None = None) -> bytes:
    """The secret from ``{x: share}`` (exactly the threshold's number of points; pass
    ``weights = lagrange_at_zero(list(points))`` to reuse them). A result that is not a
    32-byte secret means the shares were wrong or too few."""
    xs = list(points)
    weights = weights if weights is not None else lagrange_at_zero(xs)
    value = sum(w * (points[x] % PRIME) for w, x in zip(weights, xs, strict=True)) % PRIME
    if value >= 2 ** (8 * SECRET_BYTES):
        raise SecureAggregationError(
            "the shares do not combine to a 32-byte secret (wrong or too few shares)",
            "combine at least the threshold's number of shares of one secret",
        )
    return value.to_bytes(SECRET_BYTES, "big")
