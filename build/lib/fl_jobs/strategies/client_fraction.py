"""Which silos train a round at client fraction C: ``max(1, round(C * K))`` of them.

Kept free of torch so that config validation can use it cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import numpy as np

S = TypeVar("S")


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def silos_per_round(fraction: float, silos: int) -> int:
    """How many of ``silos`` train in a round at client fraction ``fraction``."""
    return min(silos, max(1, round_half_up(fraction * silos)))


def select_silos(fraction: float, silos: Sequence[S], rng: np.random.Generator) -> list[S]:
    """``silos_per_round`` silos drawn without replacement, in their original order; every
    silo (and no draw from ``rng``) when they all train."""
    k = silos_per_round(fraction, len(silos))
    if k >= len(silos):
        return list(silos)
    chosen = sorted(int(i) for i in rng.choice(len(silos), size=k, replace=False))
    return [silos[i] for i in chosen]
