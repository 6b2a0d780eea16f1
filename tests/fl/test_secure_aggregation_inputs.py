"""Bad inputs to secure aggregation are refused with a message that says what and how to fix:
settings, keys, peers, shapes, sample counts, overflow risks, and altered messages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fl_jobs.errors import FLJobError, ModelUpdateError, SecureAggregationError
from fl_jobs.secure_aggregation import (
    FixedPointCodec,
    MaskedSum,
    PublicKeys,
    SecureAggregationClient,
    SecureAggregationSession,
    SiloKeys,
)
from tests.fl.secagg_round import connect, mask_all

SILOS = ["a", "b", "c"]
MODEL = {"w": torch.zeros(4, 3), "b": torch.zeros(3)}


def _session(**kw) -> SecureAggregationSession:
    return SecureAggregationSession(kw.pop("run_id", "run"), 1, SILOS, max_samples=100, **kw)


def _update(value: float = 0.5) -> dict[str, torch.Tensor]:
    return {k: torch.full_like(v, value) for k, v in MODEL.items()}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_id": ""}, "run_id must be a non-empty string"),
        ({"round": 0}, "round must be a whole number >= 1"),
        ({"attempt": -1}, "attempt must be a whole number >= 0"),
        ({"silos": ["a"]}, "needs at least 2 silos"),
        ({"silos": ["a", "b", "a"]}, r"silos \['a'\] appear more than once"),
        ({"max_samples": 0}, "max_samples must be a whole number >= 1"),
        ({"max_samples": True}, "max_samples must be a whole number >= 1"),
        ({"threshold": 4}, r"threshold must be a whole number in 2\.\.3"),
    ],
)
def test_bad_session_settings_are_refused(kwargs: dict, message: str) -> None:
    args = {"run_id": "run", "round": 1, "silos": SILOS, "max_samples": 100}
    args.update(kwargs)
    with pytest.raises(SecureAggregationError, match=message) as info:
        SecureAggregationSession(args.pop("run_id"), args.pop("round"), args.pop("silos"), **args)
    assert " - " in str(info.value)  # "<what> - <fix>"


def test_overflow_risk_is_refused_before_the_round() -> None:
    """1,000 silos of 2^20 samples at clip 256 = 2^8 and scale 2^28 reach 2^65.97 > 2^63;
    the fix names the largest count that fits, which the check then accepts."""
    silos = [f"s{i}" for i in range(1000)]
    with pytest.raises(SecureAggregationError, match=r"could overflow.* reaches 2\^65\.97") as info:
        SecureAggregationSession("run", 1, silos, max_samples=2**20)
    assert "keep each silo at or below 134,217 samples" in str(info.value)
    SecureAggregationSession("run", 1, silos, max_samples=134_217)
    with pytest.raises(SecureAggregationError, match="could overflow"):
        SecureAggregationSession("run", 1, silos, max_samples=134_218)


def test_capacity_bound_is_exact_at_the_edge() -> None:
    """K * n * clip * 2^f + K/2 must stay below 2^63: with K=2, clip=1, f=30, the largest
    allowed n is 2^32 - 1, and 2^32 is refused."""
    codec = FixedPointCodec(scale_bits=30, clip=1.0)
    with pytest.raises(SecureAggregationError, match="exceeds 536,870,912"):
        codec.check_capacity(2, 2**32 - 1)  # beyond the float64-exact sample limit
    codec = FixedPointCodec(scale_bits=32, clip=1.0)
    codec.check_capacity(2, 2**29)  # 2 * 2^29 * 2^32 + 1 = 2^62 + 1 < 2^63
    with pytest.raises(SecureAggregationError, match="could overflow"):
        FixedPointCodec(scale_bits=33, clip=2.0).check_capacity(2, 2**29)  # 2^64 + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale_bits": 0}, "scale_bits=0 is outside 1..52"),
        ({"scale_bits": 2.5}, "scale_bits must be a whole number"),
        ({"clip": float("inf")}, "clip must be a finite number > 0"),
        ({"clip": -1.0}, "clip must be a finite number > 0"),
    ],
)
def test_bad_encodings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(SecureAggregationError, match=message):
        FixedPointCodec(**kwargs)


def test_values_beyond_the_clip_and_non_finite_values_are_refused() -> None:
    session = _session(codec=FixedPointCodec(clip=2.0))
    clients, _ = connect(session)
    big = _update()
    big["b"][1] = -3.0
    with pytest.raises(ModelUpdateError, match=r"tensor 'b' holds -3, beyond .* clip \+/-2"):
        clients["a"].masked_update(big, 10)
    nan = _update()
    nan["w"][2, 2] = float("nan")
    with pytest.raises(ModelUpdateError, match="'w' holds 1 non-finite values"):
        clients["a"].masked_update(nan, 10)


@pytest.mark.parametrize(
    ("n_samples", "message"),
    [(0, "n_samples must be a whole number >= 1"), (101, "exceeds the session's max_samples")],
)
def test_sample_counts_outside_the_session_are_refused(n_samples: int, message: str) -> None:
    clients, _ = connect(_session())
    with pytest.raises(SecureAggregationError, match=message):
        clients["a"].masked_update(_update(), n_samples)


def test_a_silo_missing_from_the_peer_set_is_named() -> None:
    session = _session()
    clients = {s: SecureAggregationClient(session, s) for s in SILOS}
    keys = {s: clients[s].public_keys for s in ("a", "b")}
    with pytest.raises(SecureAggregationError, match=r"public keys of c are missing"):
        clients["a"].share_secrets(keys)
    with pytest.raises(SecureAggregationError, match=r"public keys of c are missing"):
        MaskedSum(session, keys, MODEL)
    extra = {**keys, "c": clients["c"].public_keys, "z": SiloKeys.generate().public}
    with pytest.raises(SecureAggregationError, match=r"given for z, not in round 1"):
        clients["a"].share_secrets(extra)


def test_a_peer_that_shared_nothing_keeps_the_others_from_masking() -> None:
    session = _session()
    clients = {s: SecureAggregationClient(session, s) for s in SILOS}
    keys = {s: c.public_keys for s, c in clients.items()}
    out = {s: c.share_secrets(keys) for s, c in clients.items() if s != "c"}
    with pytest.raises(SecureAggregationError, match="a has no shares from c"):
        clients["a"].receive_shares([out["b"]["a"]])
    with pytest.raises(SecureAggregationError, match="cannot mask before"):
        clients["a"].masked_update(_update(), 10)


def test_keys_that_are_not_the_silos_own_or_malformed_are_refused() -> None:
    session = _session()
    clients = {s: SecureAggregationClient(session, s) for s in SILOS}
    keys = {s: c.public_keys for s, c in clients.items()}
    swapped = {**keys, "a": keys["b"], "b": keys["a"]}
    with pytest.raises(SecureAggregationError, match="not the ones it advertised"):
        clients["a"].share_secrets(swapped)
    with pytest.raises(SecureAggregationError, match="the mask public key must be 32 raw bytes"):
        PublicKeys(mask=b"\x01" * 31, share=keys["a"].share)
    low_order = {**keys, "c": PublicKeys(mask=bytes(32), share=bytes(32))}
    with pytest.raises(SecureAggregationError, match="low-order point"):
        clients["a"].share_secrets(low_order)


def test_mismatched_model_shapes_and_keys_are_named() -> None:
    session = _session()
    clients, keys = connect(session)
    total = MaskedSum(session, keys, MODEL)
    wrong_shape = {"w": torch.zeros(3, 4), "b": torch.zeros(3)}
    with pytest.raises(ModelUpdateError, match=r"tensor 'w' is \(3, 4\) float32, expected"):
        total.add(clients["a"].masked_update(wrong_shape, 10))
    missing = {"w": torch.zeros(4, 3)}
    with pytest.raises(ModelUpdateError, match="tensor 'b' is missing"):
        total.add(clients["b"].masked_update(missing, 10))
    with pytest.raises(ModelUpdateError, match=r"floating tensors only; 'n' is torch\.int64"):
        clients["c"].masked_update({**_update(), "n": torch.tensor(3)}, 10)


def test_a_tampered_masked_vector_is_refused() -> None:
    session = _session()
    clients, keys = connect(session)
    masked = mask_all(clients, {s: _update() for s in SILOS}, dict.fromkeys(SILOS, 10))
    total = MaskedSum(session, keys, MODEL)
    short = dataclasses.replace(masked["a"], vector=masked["a"].vector[:-1])
    with pytest.raises(ModelUpdateError, match=r"shape \(15,\), expected uint64 of \(16,\)"):
        total.add(short)
    floats = dataclasses.replace(masked["a"], vector=masked["a"].vector.astype(np.float64))
    with pytest.raises(ModelUpdateError, match="holds a float64 vector"):
        total.add(floats)
    total.add(masked["a"])
    with pytest.raises(SecureAggregationError, match="arrived twice"):
        total.add(masked["a"])


def test_messages_of_another_round_or_attempt_are_refused() -> None:
    session = _session()
    clients, _ = connect(session)
    redo = session.without([])
    redo_clients, redo_keys = connect(redo)
    old = clients["a"].masked_update(_update(), 10)
    total = MaskedSum(redo, redo_keys, MODEL)
    with pytest.raises(SecureAggregationError, match="belongs to run 'run' round 1 attempt 0"):
        total.add(old)
    old_reveal = clients["b"].reveal(SILOS, [])
    for silo in SILOS:
        total.add(redo_clients[silo].masked_update(_update(), 10))
    with pytest.raises(SecureAggregationError, match="reveal of b belongs to"):
        total.finish([old_reveal])


def test_an_altered_or_misrouted_share_bundle_is_refused() -> None:
    session = _session()
    clients = {s: SecureAggregationClient(session, s) for s in SILOS}
    keys = {s: c.public_keys for s, c in clients.items()}
    out = {s: c.share_secrets(keys) for s, c in clients.items()}
    bundle = out["b"]["a"]
    flipped = bytes([bundle.ciphertext[0] ^ 1]) + bundle.ciphertext[1:]
    with pytest.raises(SecureAggregationError, match="b -> a does not authenticate"):
        clients["a"].receive_shares(
            [dataclasses.replace(bundle, ciphertext=flipped), out["c"]["a"]]
        )
    with pytest.raises(SecureAggregationError, match="a got the share bundle b -> c"):
        clients["a"].receive_shares([out["b"]["c"]])
    # A bundle relabelled as coming from another sender does not open either.
    relabelled = dataclasses.replace(out["c"]["a"], sender="b")
    with pytest.raises(SecureAggregationError, match="does not authenticate"):
        clients["a"].receive_shares([relabelled, out["c"]["a"]])


def test_too_few_or_altered_reveals_are_refused() -> None:
    session = _session()  # threshold 2 of 3
    clients, keys = connect(session)
    masked = mask_all(clients, {s: _update() for s in SILOS}, dict.fromkeys(SILOS, 10))
    total = MaskedSum(session, keys, MODEL)
    for silo in SILOS:
        total.add(masked[silo])
    reveals = [clients[s].reveal(SILOS, []) for s in SILOS]
    with pytest.raises(SecureAggregationError, match=r"1 of 3 survivors revealed.*needs 2"):
        total.finish(reveals[:1])
    shares = dict(reveals[0].self_mask_shares)
    shares["c"] += 1
    bad = dataclasses.replace(reveals[0], self_mask_shares=shares)
    with pytest.raises(SecureAggregationError, match=r"self-mask secret of c .* commitment"):
        total.finish([bad, reveals[1]])
    with pytest.raises(SecureAggregationError, match="was made for survivors"):
        total.finish([dataclasses.replace(reveals[0], survivors=("a", "b")), reveals[1]])
    result = total.finish(reveals)  # the sum was not consumed by the refused attempts
    assert torch.allclose(result["w"], torch.full((4, 3), 0.5))


def test_every_error_is_a_project_error() -> None:
    assert issubclass(SecureAggregationError, FLJobError)
    with pytest.raises(SecureAggregationError, match="silo 'z' is not in round 1 attempt 0"):
        SecureAggregationClient(_session(), "z")
