"""What the orchestrator sees of one silo: a masked vector statistically unrelated to the
silo's update, and unmasking requests that cannot open a single silo.

Keys and self-mask secrets are fixed bytes, so every masked vector here is the same on every
run: the statistics are computed once, and the tests cannot flake.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from fl_jobs.config import JobConfig
from fl_jobs.errors import SecureAggregationError
from fl_jobs.examples.base import DataShape
from fl_jobs.examples.registry import get_example
from fl_jobs.secure_aggregation import (
    MaskedSum,
    ModelLayout,
    SecureAggregationClient,
    SecureAggregationSession,
    SiloKeys,
)
from tests.fl.secagg_round import connect

SILOS = ["silo-a", "silo-b", "silo-c", "silo-d"]
#: Acceptance level of every statistical check: a uniform, independent vector fails one with
#: probability 1e-6 (moot with fixed keys, but it says how strict each threshold is).
ALPHA = 1e-6


def _mnist_update(seed: int) -> dict[str, torch.Tensor]:
    model = get_example("mnist").build_model(JobConfig(example="mnist").example, DataShape(784, 10))
    g = torch.Generator().manual_seed(seed)
    return {
        k: v.detach() + 0.1 * torch.randn(v.shape, generator=g)
        for k, v in model.state_dict().items()
    }


def _fixed_clients(session: SecureAggregationSession) -> dict[str, SecureAggregationClient]:
    return {
        silo: SecureAggregationClient(
            session,
            silo,
            keys=SiloKeys.from_private_bytes(bytes([7 + i]) * 32, bytes([77 + i]) * 32),
            self_mask_secret=bytes([177 + i]) * 32,
        )
        for i, silo in enumerate(session.silos)
    }


@pytest.fixture(scope="module")
def raw_and_masked() -> tuple[np.ndarray, np.ndarray]:
    """silo-b's encoded update before masking, and the masked vector it sends (its model
    part: the last element is its masked sample count, tested below)."""
    session = SecureAggregationSession("run-p", 1, SILOS, max_samples=1_000)
    clients, _ = connect(session, _fixed_clients(session))
    update = _mnist_update(seed=0)
    layout = ModelLayout.of(update)
    raw = layout.encode(update, 600, session.codec, source="raw")
    masked = clients["silo-b"].masked_update(update, 600).vector
    assert masked.size == raw.size + 1
    return raw, masked[:-1]


def _chi_square_p(values: np.ndarray) -> float:
    """p-value of Pearson's chi-square test that a byte is uniform over its 256 values."""
    counts = np.bincount(values.astype(np.int64), minlength=256)
    return float(stats.chisquare(counts).pvalue)


def test_masked_update_is_uncorrelated_with_the_raw_update(raw_and_masked) -> None:
    """Pearson's r between the raw update's signed integers and the masked words (as
    fractions of 2^64). For independent vectors of n = 199,210 elements r is about normal
    with standard deviation 1/sqrt(n) = 0.0022; we accept |r| below the two-sided ALPHA
    quantile (4.9 standard deviations, 0.011). The same statistic on the unmasked words (what
    the silo would send without masks) is far outside it."""
    raw, masked = raw_and_masked
    signed = raw.view(np.int64).astype(np.float64)
    words = masked.astype(np.float64) / 2.0**64
    limit = stats.norm.ppf(1 - ALPHA / 2) / np.sqrt(raw.size)
    r = np.corrcoef(signed, words)[0, 1]
    assert abs(r) < limit, (r, limit)
    # The statistic has power: the unmasked words, read the same way, are strongly
    # correlated with the update (negative weights wrap to words near 2^64).
    r_raw = np.corrcoef(signed, raw.astype(np.float64) / 2.0**64)[0, 1]
    assert abs(r_raw) > 0.5, r_raw
    # Nor does the masked top byte follow the sign of the weight it hides.
    top = (masked >> np.uint64(56)).astype(np.float64)
    r_sign = np.corrcoef(np.sign(signed), top)[0, 1]
    assert abs(r_sign) < limit, r_sign


def test_masked_words_are_uniform_while_the_raw_ones_are_not(raw_and_masked) -> None:
    """Chi-square tests (255 degrees of freedom, about 778 expected per cell) that the top,
    a middle and the bottom byte of the masked words are uniform, and a binomial check that
    each of the 64 bits is set in half of the words (within the ALPHA quantile,
    4.9 * 0.5 / sqrt(n) = 0.0055). The raw encoding fails the top-byte test outright: small
    weights in two's complement have top byte 0x00 or 0xFF."""
    raw, masked = raw_and_masked
    for shift in (56, 32, 0):
        byte = (masked >> np.uint64(shift)) & np.uint64(0xFF)
        assert _chi_square_p(byte) > ALPHA, shift
    raw_top = (raw >> np.uint64(56)) & np.uint64(0xFF)
    assert _chi_square_p(raw_top) < 1e-100
    bits = np.unpackbits(masked.view(np.uint8)).reshape(-1, 64).mean(axis=0)
    limit = stats.norm.ppf(1 - ALPHA / 2) * 0.5 / np.sqrt(masked.size)
    assert np.max(np.abs(bits - 0.5)) < limit, np.max(np.abs(bits - 0.5))


def test_a_silo_reveals_one_secret_per_peer_and_only_once() -> None:
    """A curious orchestrator that asks for a survivor's self-mask share and, in a second
    request, for its mask-key share (both would unmask that silo) is refused."""
    session = SecureAggregationSession("run-q", 1, SILOS, max_samples=10)
    clients, keys = connect(session)
    update = {"w": torch.ones(3)}
    masked = {s: c.masked_update(update, 5) for s, c in clients.items()}
    total = MaskedSum(session, keys, update)
    for silo in SILOS:
        total.add(masked[silo])
    reveal = clients["silo-a"].reveal(SILOS, [])
    assert set(reveal.self_mask_shares) == set(SILOS) and reveal.mask_key_shares == {}
    with pytest.raises(SecureAggregationError, match="already revealed shares"):
        clients["silo-a"].reveal(["silo-a", "silo-c", "silo-d"], ["silo-b"])
    # The same request again (a lost answer) is answered the same way.
    assert clients["silo-a"].reveal(SILOS, []) == reveal
    partial = clients["silo-c"].reveal(["silo-a", "silo-c", "silo-d"], ["silo-b"])
    assert set(partial.self_mask_shares) == {"silo-a", "silo-c", "silo-d"}
    assert set(partial.mask_key_shares) == {"silo-b"}


def test_a_silo_masks_only_once_per_session() -> None:
    """Two masked vectors under the same masks would hand over the difference of the two
    updates; a second masking is refused."""
    session = SecureAggregationSession("run-r", 1, SILOS, max_samples=10)
    clients, _ = connect(session)
    clients["silo-a"].masked_update({"w": torch.ones(3)}, 5)
    with pytest.raises(SecureAggregationError, match="already sent a masked update"):
        clients["silo-a"].masked_update({"w": torch.zeros(3)}, 5)


def test_threshold_is_more_than_half_of_the_silos() -> None:
    """No two disjoint groups of silos can each reach the threshold, so an orchestrator that
    asked two groups for two different splits still could not rebuild both secrets of one
    silo (each silo answers one split only)."""
    assert SecureAggregationSession("r", 1, SILOS, max_samples=1).threshold == 3
    with pytest.raises(SecureAggregationError, match=r"threshold must be a whole number in 3\.\.4"):
        SecureAggregationSession("r", 1, SILOS, max_samples=1, threshold=2)
