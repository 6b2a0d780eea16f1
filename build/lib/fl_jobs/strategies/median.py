"""Coordinate-wise median (Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018).

Every coordinate of the new global model is the median of that coordinate over the round's
updates (the mean of the two middle values for an even count, as ``numpy.median``). Each silo
counts once whatever its sample count: a weight by self-reported counts would let one silo buy
influence. A minority of arbitrary updates cannot move a coordinate beyond the honest values'
range. Holds the round's updates (K models; see :mod:`fl_jobs.strategies.stacked`).
"""

from __future__ import annotations

import torch

from fl_jobs.strategies.stacked import RobustStrategy, UpdateStack


def median_of_columns(values: torch.Tensor) -> torch.Tensor:
    """The median of each column of ``values`` (K x n): the middle of the sorted column, or
    the mean of the two middle values when K is even."""
    k = values.shape[0]
    ordered = torch.sort(values, dim=0).values
    low, high = ordered[(k - 1) // 2], ordered[k // 2]
    return low if k % 2 else (low + high) / 2


class Median(RobustStrategy):
    name = "median"
    title = "median"

    def combine(self, stack: UpdateStack) -> dict[str, torch.Tensor]:
        return stack.unflatten(stack.coordinatewise(median_of_columns))
