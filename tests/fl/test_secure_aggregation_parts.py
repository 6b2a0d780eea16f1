"""The building blocks of secure aggregation on known inputs: Shamir sharing, the mask
stream, the fixed-point codec, the flat layout and the key derivation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fl_jobs.errors import ModelUpdateError, SecureAggregationError
from fl_jobs.secure_aggregation import (
    FixedPointCodec,
    ModelLayout,
    SecureAggregationSession,
    shamir,
)
from fl_jobs.secure_aggregation.key_agreement import pair_mask_seed
from fl_jobs.secure_aggregation.keys import SiloKeys
from fl_jobs.secure_aggregation.mask_stream import CHUNK, apply_masks, mask
from fl_jobs.secure_aggregation.session import encode_fields

SECRET = bytes(range(32))


def test_any_threshold_of_shares_rebuilds_the_secret() -> None:
    shares = shamir.split(SECRET, 5, 3)
    for subset in itertools.combinations(range(5), 3):
        assert shamir.combine({i + 1: shares[i] for i in subset}) == SECRET
    assert shamir.combine({i + 1: shares[i] for i in range(5)}) == SECRET  # more is fine


def test_fewer_shares_than_the_threshold_do_not_give_the_secret() -> None:
    shares = shamir.split(SECRET, 5, 3)
    for subset in itertools.combinations(range(5), 2):
        try:
            rebuilt = shamir.combine({i + 1: shares[i] for i in subset})
        except SecureAggregationError:
            continue  # the interpolated value is not even a 32-byte number
        assert rebuilt != SECRET


def test_shares_are_fresh_each_time_and_refuse_bad_arguments() -> None:
    assert shamir.split(SECRET, 3, 2) != shamir.split(SECRET, 3, 2)  # random coefficients
    with pytest.raises(SecureAggregationError, match="must be 32 bytes"):
        shamir.split(b"short", 3, 2)
    with pytest.raises(SecureAggregationError, match=r"threshold 4 must be in 2\.\.3"):
        shamir.split(SECRET, 3, 4)
    with pytest.raises(SecureAggregationError, match="distinct and nonzero"):
        shamir.lagrange_at_zero([1, 1])


def test_mask_is_the_aes_256_ctr_keystream_across_chunks() -> None:
    """The mask of a seed is AES-256-CTR's keystream from counter 0 read as little-endian
    uint64, continuous across the chunk boundary; signs add and subtract mod 2^64."""
    seed = bytes(range(100, 132))
    size = CHUNK + 5
    reference = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    expected = np.frombuffer(reference.update(bytes(8 * size)), dtype="<u8")
    got = mask(seed, size)
    assert np.array_equal(got, expected)
    vector = np.arange(size, dtype=np.uint64)
    apply_masks(vector, [(seed, 1), (seed, 1), (seed, -1)])
    assert np.array_equal(vector, np.arange(size, dtype=np.uint64) + expected)  # wraps
    apply_masks(vector, [(seed, -1)])
    assert np.array_equal(vector, np.arange(size, dtype=np.uint64))


def test_both_silos_of_a_pair_derive_the_same_seed_and_nobody_else_does() -> None:
    session = SecureAggregationSession("run", 1, ["a", "b", "c"], max_samples=10)
    a, b, c = (SiloKeys.generate() for _ in range(3))
    ab = pair_mask_seed(a.mask, b.mask.public_key(), session, "a", "b")
    assert ab == pair_mask_seed(b.mask, a.mask.public_key(), session, "b", "a")
    assert ab != pair_mask_seed(a.mask, c.mask.public_key(), session, "a", "c")
    assert len(ab) == 32


def test_field_encoding_is_unambiguous() -> None:
    assert encode_fields("ab", "c") != encode_fields("a", "bc")
    assert encode_fields(1) != encode_fields("1")
    with pytest.raises(TypeError):
        encode_fields(True)


def test_codec_round_trip_with_negative_values() -> None:
    codec = FixedPointCodec(scale_bits=10, clip=4.0)
    values = np.array([-4.0, -1.5, -(2**-11), 0.0, 2**-12, 1.0, 3.999])
    encoded = np.empty(values.size, dtype=np.uint64)
    codec.encode_into(values.copy(), 3, encoded, "t")
    assert encoded[0] == np.uint64(2**64 - 3 * 4 * 1024)  # two's complement of -12,288
    decoded = codec.decode(encoded, 3)
    assert np.max(np.abs(decoded - values)) <= codec.error_bound(1, 3)
    assert codec.error_bound(7, 100) == 7 / (2**11 * 100)


def test_layout_encodes_and_decodes_every_dtype_and_shape() -> None:
    """Values on the 2^-28 grid come back exactly, in their own dtypes and shapes, and the
    caller's tensors are left as they were."""
    weights = {
        "a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "b": torch.tensor([0.5, -0.25], dtype=torch.float64),
        "c": torch.tensor(1.5, dtype=torch.bfloat16),
    }
    kept = {k: v.clone() for k, v in weights.items()}
    layout = ModelLayout.of(weights)
    codec = FixedPointCodec()
    encoded = layout.encode(weights, 1, codec, source="test")
    assert layout.size == 9 and encoded.dtype == np.uint64
    assert all(torch.equal(weights[k], kept[k]) for k in weights)
    back = layout.decode(encoded, 1, codec)
    for key, tensor in weights.items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor)
    with pytest.raises(ModelUpdateError, match="not this model's ring sum of 9 elements"):
        layout.decode(encoded[:-1], 1, codec)
