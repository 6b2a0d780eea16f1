"""Secure aggregation end to end: the unmasked sum equals the plain weighted mean within the
fixed-point bound on the examples' real model shapes, with and without dropouts, and masks
are deterministic in their keys and differ between rounds and attempts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fl_jobs.config import JobConfig
from fl_jobs.errors import SecureAggregationError
from fl_jobs.examples.base import DataShape
from fl_jobs.examples.registry import get_example
from fl_jobs.secure_aggregation import (
    FixedPointCodec,
    MaskedSum,
    SecureAggregationClient,
    SecureAggregationSession,
    SiloKeys,
)
from tests.fl.secagg_round import (
    Weights,
    connect,
    exact_mean,
    mask_all,
    max_excess,
    secure_round,
    unmask,
)

SILOS = [f"silo-{i}" for i in range(7)]
# Very different sizes, as cross-silo federations have (a hospital of 60,000 and one of 1).
COUNTS = dict(zip(SILOS, [1, 13, 250, 999, 37, 4_096, 60_000], strict=True))


def model_weights(example: str, n_features: int) -> Weights:
    config = JobConfig(example=example)
    model = get_example(example).build_model(config.example, DataShape(n_features, 10))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


MODELS = {
    "digits MLP (4,810 parameters)": lambda: model_weights("digits", 64),
    "MNIST 2NN (199,210 parameters)": lambda: model_weights("mnist", 784),
}


def silo_updates(base: Weights, silos: list[str], seed: int, spread: float) -> dict[str, Weights]:
    """Each silo's trained weights: the global model plus its own random change."""
    g = torch.Generator().manual_seed(seed)
    return {
        silo: {k: v + spread * torch.randn(v.shape, generator=g) for k, v in base.items()}
        for silo in silos
    }


@pytest.mark.parametrize("model", list(MODELS))
def test_masked_sum_equals_plain_weighted_mean_on_real_models(model: str) -> None:
    base = MODELS[model]()
    assert sum(v.numel() for v in base.values()) in (4_810, 199_210)
    updates = silo_updates(base, SILOS, seed=1, spread=0.5)
    updates["silo-3"] = {k: 100 * v for k, v in updates["silo-3"].items()}  # large, < clip
    session = SecureAggregationSession("run-a", 1, SILOS, max_samples=60_000)
    result = secure_round(session, updates, COUNTS)
    bound = session.codec.error_bound(len(SILOS), sum(COUNTS.values()))
    assert bound < 1e-12  # 7 / (2^29 * 65,396): far below float32's resolution
    assert max_excess(result, exact_mean(updates, COUNTS, SILOS), bound) <= 0
    assert all(result[k].dtype == torch.float32 for k in base)


def test_error_is_the_fixed_point_bound_when_it_dominates() -> None:
    """With 8 fractional bits the quantisation error is far above float32's rounding: the
    result stays within K / (2^(f+1) N) and actually uses a good part of it."""
    base = model_weights("digits", 64)
    updates = silo_updates(base, SILOS, seed=2, spread=1.0)
    counts = dict(zip(SILOS, [1, 2, 3, 5, 8, 13, 21], strict=True))
    codec = FixedPointCodec(scale_bits=8)
    session = SecureAggregationSession("run-b", 1, SILOS, max_samples=21, codec=codec)
    result = secure_round(session, updates, counts)
    bound = codec.error_bound(len(SILOS), sum(counts.values()))
    exact = exact_mean(updates, counts, SILOS)
    assert max_excess(result, exact, bound) <= 0
    worst = max(float(np.max(np.abs(result[k].double().numpy() - exact[k]))) for k in exact)
    assert worst > 0.2 * bound, (worst, bound)


def test_float64_model_meets_the_bound_without_float32_rounding() -> None:
    base = {k: v.double() for k, v in model_weights("digits", 64).items()}
    updates = silo_updates(base, SILOS, seed=3, spread=0.3)
    counts = dict(zip(SILOS, [3, 1, 4, 1, 5, 9, 2], strict=True))
    session = SecureAggregationSession("run-c", 2, SILOS, max_samples=9)
    result = secure_round(session, updates, counts)
    bound = session.codec.error_bound(len(SILOS), sum(counts.values()))
    exact = exact_mean(updates, counts, SILOS)
    for key, ref in exact.items():
        assert result[key].dtype == torch.float64
        error = np.abs(result[key].numpy() - ref)
        assert float(error.max()) <= bound + 4 * np.finfo(np.float64).eps * np.abs(ref).max()


def test_silo_lost_after_masking_is_recovered_from_the_survivors_shares() -> None:
    """silo-2 masks but its update never reaches the orchestrator: the survivors' reveals
    rebuild its mask key, its pairwise masks are removed, and the result is the weighted
    mean of the six survivors."""
    base = model_weights("digits", 64)
    updates = silo_updates(base, SILOS, seed=4, spread=0.5)
    session = SecureAggregationSession("run-d", 3, SILOS, max_samples=60_000)
    clients, keys = connect(session)
    masked = mask_all(clients, updates, COUNTS)
    total = MaskedSum(session, keys, base)
    for silo in SILOS:
        if silo != "silo-2":
            total.add(masked[silo])
    assert total.missing == ("silo-2",)
    result = unmask(total, clients, silent=["silo-5"])  # one survivor does not even reveal
    survivors = [s for s in SILOS if s != "silo-2"]
    bound = session.codec.error_bound(len(survivors), total.total_samples)
    assert total.total_samples == sum(COUNTS[s] for s in survivors)
    assert max_excess(result, exact_mean(updates, COUNTS, survivors), bound) <= 0
    # Its update arriving late is refused: the sum is closed.
    with pytest.raises(SecureAggregationError, match="was finished"):
        total.add(masked["silo-2"])


def test_silo_that_sent_its_update_then_went_silent_is_counted() -> None:
    base = model_weights("digits", 64)
    updates = silo_updates(base, SILOS, seed=5, spread=0.5)
    session = SecureAggregationSession("run-e", 1, SILOS, max_samples=60_000)
    result = secure_round(session, updates, COUNTS, silent=["silo-0", "silo-6"])
    bound = session.codec.error_bound(len(SILOS), sum(COUNTS.values()))
    assert max_excess(result, exact_mean(updates, COUNTS, SILOS), bound) <= 0


def test_too_many_dropouts_redo_the_round_without_those_silos() -> None:
    """Four of seven silos are lost after masking: three survivors cannot reach the threshold
    (4), so the round is redone as the next attempt over the survivors, who mask the same
    trained weights under new keys and masks; the result is their weighted mean."""
    base = model_weights("digits", 64)
    updates = silo_updates(base, SILOS, seed=6, spread=0.5)
    session = SecureAggregationSession("run-f", 4, SILOS, max_samples=60_000)
    assert session.threshold == 4
    clients, keys = connect(session)
    first = mask_all(clients, updates, COUNTS)
    lost = ["silo-0", "silo-2", "silo-4", "silo-6"]
    total = MaskedSum(session, keys, base)
    for silo in SILOS:
        if silo not in lost:
            total.add(first[silo])
    with pytest.raises(SecureAggregationError, match=r"only 3 silos survive.*needs 4"):
        unmask(total, clients)

    redo = session.without(lost)
    assert (redo.attempt, redo.silos) == (1, ("silo-1", "silo-3", "silo-5"))
    assert redo.threshold == 2 and redo.digest != session.digest
    survivors = list(redo.silos)
    result = secure_round(
        redo, {s: updates[s] for s in survivors}, {s: COUNTS[s] for s in survivors}
    )
    bound = redo.codec.error_bound(len(survivors), sum(COUNTS[s] for s in survivors))
    assert max_excess(result, exact_mean(updates, COUNTS, survivors), bound) <= 0


def _fixed_clients(session: SecureAggregationSession) -> dict[str, SecureAggregationClient]:
    """Clients whose keys and self-mask secrets are fixed bytes (a replayed round)."""
    clients = {}
    for i, silo in enumerate(session.silos):
        keys = SiloKeys.from_private_bytes(bytes([i + 1]) * 32, bytes([i + 101]) * 32)
        clients[silo] = SecureAggregationClient(
            session, silo, keys=keys, self_mask_secret=bytes([i + 201]) * 32
        )
    return clients


def _masked_vectors(session: SecureAggregationSession, updates: dict[str, Weights]) -> dict:
    clients, _ = connect(session, _fixed_clients(session))
    counts = {s: 10 + i for i, s in enumerate(session.silos)}
    return {s: m.vector for s, m in mask_all(clients, updates, counts).items()}


def test_same_keys_and_secrets_give_the_same_masks_other_rounds_other_masks() -> None:
    silos = SILOS[:4]
    updates = silo_updates(model_weights("digits", 64), silos, seed=7, spread=0.5)
    session = SecureAggregationSession("run-g", 5, silos, max_samples=100)
    first = _masked_vectors(session, updates)
    again = _masked_vectors(SecureAggregationSession("run-g", 5, silos, max_samples=100), updates)
    assert all(np.array_equal(first[s], again[s]) for s in silos)
    others = [
        SecureAggregationSession("run-g", 6, silos, max_samples=100),  # next round
        session.without([]),  # next attempt of the round
        SecureAggregationSession("run-h", 5, silos, max_samples=100),  # another run
    ]
    for other in others:
        vectors = _masked_vectors(other, updates)
        for silo in silos:
            # Unrelated 64-bit words: equal in a position with probability 2^-64.
            assert not np.any(vectors[silo] == first[silo]), (other, silo)


def test_fresh_random_keys_give_bit_identical_results() -> None:
    """Masks cancel exactly in the ring, so the result does not depend on the keys: a resumed
    run that makes new keys ends with the same weights, bit for bit."""
    silos = SILOS[:5]
    updates = silo_updates(model_weights("mnist", 784), silos, seed=8, spread=0.5)
    counts = {s: COUNTS[s] for s in silos}
    session = SecureAggregationSession("run-i", 1, silos, max_samples=60_000)
    one = secure_round(session, updates, counts)
    two = secure_round(session, updates, counts)
    assert all(torch.equal(one[k], two[k]) for k in one)
