"""How many silos a round selects at client fraction C: ``max(1, round(C * K))``.

Kept free of torch so that config validation can use it cheaply.
"""

from __future__ import annotations

import math


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def silos_per_round(fraction: float, silos: int) -> int:
    """How many of ``silos`` train in a round at client fraction ``fraction``."""
    return min(silos, max(1, round_half_up(fraction * silos)))
