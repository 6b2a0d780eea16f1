"""Masks: AES-256-CTR keystreams, read as uint64 and added to (or subtracted from) a vector.

A 32-byte seed from HKDF is the AES-256 key; the counter starts at zero (each key is used for
one stream only, so there is no nonce to reuse). AES in counter mode is a pseudorandom
generator under the standard assumption that AES is a pseudorandom permutation; a stream of
P parameters is 8P / 16 blocks (5 million for 10M parameters), far below the 2^64 blocks
where its distinguishing bound starts to matter. With AES-NI it runs at several GB/s per core
(OpenSSL through ``cryptography``); docs/secure-aggregation.md compares it with ChaCha20.

Streams are expanded in chunks that stay in cache, with every stream's cipher context open at
once, so a silo's K masks cost one pass over its vector rather than K.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from fl_jobs.errors import SecureAggregationError

#: Elements per chunk: 1 MiB of uint64, in the L2 cache of the machines measured.
CHUNK = 1 << 17
_ZERO_COUNTER = bytes(16)
_BLOCK = 16
LITTLE_U64 = np.dtype("<u8")


def _keystream(seed: bytes) -> CipherContext:
    if len(seed) != 32:
        raise SecureAggregationError(
            f"a mask seed must be 32 bytes, got {len(seed)}", "derive seeds with HKDF (32 bytes)"
        )
    return Cipher(algorithms.AES(seed), modes.CTR(_ZERO_COUNTER)).encryptor()


def mask(seed: bytes, size: int) -> np.ndarray:
    """The ``size`` uint64 mask of ``seed`` (the little-endian keystream) as a new array."""
    out = np.zeros(size, dtype=np.uint64)
    apply_masks(out, [(seed, 1)])
    return out


def apply_masks(vector: np.ndarray, masks: Sequence[tuple[bytes, int]]) -> None:
    """``vector += sum(sign * mask(seed))`` mod 2^64, in place, for ``(seed, sign)`` pairs
    with ``sign`` +1 or -1."""
    if vector.dtype != np.uint64 or vector.ndim != 1 or not vector.flags.c_contiguous:
        raise SecureAggregationError(
            f"masks apply to a flat contiguous uint64 vector, got {vector.dtype} {vector.shape}",
            "encode the update first",
        )
    if any(sign not in (1, -1) for _, sign in masks):
        raise SecureAggregationError("a mask's sign must be +1 or -1", "pass +1 or -1")
    streams = [(_keystream(seed), sign) for seed, sign in masks]
    if not streams:
        return
    zeros = bytes(CHUNK * 8)
    buffer = bytearray(CHUNK * 8 + _BLOCK - 1)
    words = np.frombuffer(buffer, dtype=LITTLE_U64, count=CHUNK)
    for start in range(0, vector.size, CHUNK):
        stop = min(start + CHUNK, vector.size)
        part = vector[start:stop]
        n = stop - start
        for stream, sign in streams:
            stream.update_into(memoryview(zeros)[: n * 8], buffer)
            if sign > 0:
                np.add(part, words[:n], out=part)
            else:
                np.subtract(part, words[:n], out=part)
