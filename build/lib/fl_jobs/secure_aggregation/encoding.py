"""Fixed-point encoding of weighted updates in the ring of integers mod 2^64.

Masks cancel only in exact arithmetic, so each silo sends ``round(n_i * w * 2^f)`` as a
uint64 (two's complement for negatives) and every sum wraps mod 2^64 in numpy. The true sum
``sum_i round(n_i * w_i * 2^f)`` must stay inside the signed range ``(-2^63, 2^63)`` for the
decoded value to be right, which :meth:`FixedPointCodec.check_capacity` proves before a round
from the number of silos, the largest sample count and the clip on ``|w|``.

Error: each silo's rounding is at most 1/2 unit of ``2^-f``, so the decoded weighted mean is
within ``K / (2^(f+1) * N)`` (``K`` silos, ``N`` samples in total, so at most ``2^-(f+1)``)
of the exact mean, before the final rounding to the model's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from fl_jobs.errors import ModelUpdateError, SecureAggregationError

#: Elements of the ring Z / 2^64; sums wrap in numpy's uint64 arithmetic.
RING_BITS = 64
#: Largest magnitude a decoded sum may have: the signed range of int64.
SIGNED_LIMIT = 2 ** (RING_BITS - 1)
#: Sample counts above this make ``n * w`` inexact in float64 for float32 weights.
MAX_EXACT_SAMPLES = 2**29


@dataclass(frozen=True)
class FixedPointCodec:
    """``scale_bits`` fractional bits (``f``) and the bound ``clip`` on every ``|w|``.

    The defaults (``f = 28``, ``clip = 256``) leave room for ``2^63 / (256 * 2^28) = 2^27``
    (134 million) samples summed over a round and put the quantisation error of the mean
    below ``2^-29`` (1.9e-9), under a float32 ulp for weights above about 0.016.
    """

    scale_bits: int = 28
    clip: float = 256.0

    def __post_init__(self) -> None:
        if isinstance(self.scale_bits, bool) or not isinstance(self.scale_bits, int):
            raise SecureAggregationError(
                f"scale_bits must be a whole number, got {self.scale_bits!r}",
                "use e.g. scale_bits=28",
            )
        if not 1 <= self.scale_bits <= 52:
            raise SecureAggregationError(
                f"scale_bits={self.scale_bits} is outside 1..52",
                "use e.g. scale_bits=28 (float64 holds 53 bits)",
            )
        clip = float(self.clip)
        if not (np.isfinite(clip) and clip > 0):
            raise SecureAggregationError(
                f"clip must be a finite number > 0, got {self.clip!r}", "use e.g. clip=256.0"
            )

    @property
    def scale(self) -> float:
        """One unit of the encoding is ``1 / scale`` of a weight."""
        return float(2**self.scale_bits)

    def max_abs_sum(self, n_silos: int, max_samples: int) -> Fraction:
        """The largest ``|sum_i round(n_i * w_i * 2^f)|`` for ``n_silos`` silos of at most
        ``max_samples`` samples with ``|w| <= clip`` (exact, as a fraction)."""
        per_silo = max_samples * Fraction(float(self.clip)) * 2**self.scale_bits
        return n_silos * (per_silo + Fraction(1, 2))

    def check_capacity(self, n_silos: int, max_samples: int) -> None:
        """Refuse settings under which a round's sum could wrap around the ring."""
        if max_samples > MAX_EXACT_SAMPLES:
            raise SecureAggregationError(
                f"max_samples={max_samples:,} exceeds {MAX_EXACT_SAMPLES:,}, above which "
                "n * w is no longer exact in float64",
                "split the silo's data or weight by a smaller count",
            )
        bound = self.max_abs_sum(n_silos, max_samples)
        if bound >= SIGNED_LIMIT:
            room = self.max_samples_for(n_silos)
            keep = f"keep each silo at or below {room:,} samples" if room else "use fewer silos"
            raise SecureAggregationError(
                f"secure aggregation could overflow: {n_silos} silos x {max_samples:,} "
                f"samples x clip {float(self.clip):g} x 2^{self.scale_bits} reaches "
                f"2^{float(np.log2(float(bound))):.2f}, beyond the ring's signed range 2^63",
                f"lower scale_bits or clip, or {keep}",
            )

    def max_samples_for(self, n_silos: int) -> int:
        """The largest per-silo sample count the capacity check accepts for ``n_silos``."""
        per_sample = n_silos * Fraction(float(self.clip)) * 2**self.scale_bits
        room = (SIGNED_LIMIT - Fraction(n_silos, 2)) / per_sample
        largest = math.ceil(room) - 1  # the bound must stay strictly below 2^63
        return max(0, min(largest, MAX_EXACT_SAMPLES))

    def error_bound(self, n_silos: int, total_samples: int) -> float:
        """Largest distance between the decoded mean and the exact weighted mean (before the
        final rounding to the model's dtype): ``K / (2^(f+1) * N)``."""
        return n_silos / (2.0 ** (self.scale_bits + 1) * total_samples)

    def encode_into(self, values: np.ndarray, n_samples: int, out: np.ndarray, what: str) -> None:
        """Write ``round(n_samples * values * 2^f)`` into the uint64 array ``out`` (two's
        complement). ``values`` (float64) is consumed: it is scaled in place. ``what`` names
        the values in errors (e.g. the tensor)."""
        bad = ~np.isfinite(values)
        if bad.any():
            raise ModelUpdateError(
                f"{what} holds {int(bad.sum())} non-finite values (NaN or inf)",
                "the silo's training diverged: lower the learning rate",
            )
        if values.size:
            worst = int(np.argmax(np.abs(values)))
            if abs(float(values[worst])) > float(self.clip):
                raise ModelUpdateError(
                    f"{what} holds {float(values[worst]):.6g}, beyond the secure-aggregation "
                    f"clip +/-{float(self.clip):g}",
                    "raise clip in the session (the capacity check then bounds the samples) "
                    "or keep the weights smaller (e.g. weight decay)",
                )
        np.multiply(values, float(n_samples) * self.scale, out=values)
        np.rint(values, out=values)
        np.copyto(out.view(np.int64), values, casting="unsafe")

    def decode(self, total: np.ndarray, total_samples: int) -> np.ndarray:
        """The weighted mean from (part of) the ring sum of all silos, as float64:
        ``signed(sum) / (2^f * N)``."""
        signed = total.view(np.int64).astype(np.float64)
        signed /= self.scale * float(total_samples)
        return signed
