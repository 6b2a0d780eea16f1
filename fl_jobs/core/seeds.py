"""Derived seeds: one per (job seed, round, silo), so that reruns give the same weights."""

from __future__ import annotations

import numpy as np


def derive_seed(seed: int, *parts: int) -> int:
    """A 63-bit seed mixed from ``seed`` and ``parts`` (stable across processes/platforms)."""
    state = np.random.SeedSequence([seed, *parts]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))
