"""Coordinate-wise trimmed mean (Yin et al., "Byzantine-Robust Distributed Learning: Towards
Optimal Statistical Rates", ICML 2018).

For every coordinate, the ``floor(beta * K)`` smallest and as many largest values of the
round's K updates are dropped and the rest averaged (as Flower's ``FedTrimmedAvg`` and
``scipy.stats.trim_mean``). ``beta`` in [0, 0.5): 0 is the plain (unweighted) mean; up to
``floor(beta * K)`` arbitrary updates per coordinate are cut away. Unweighted, like the
median: self-reported sample counts buy no influence. Holds the round's updates (K models).
"""

from __future__ import annotations

import torch

from fl_jobs.strategies.stacked import RobustStrategy, UpdateStack


def trimmed_mean_of_columns(values: torch.Tensor, beta: float) -> torch.Tensor:
    """The mean of each column of ``values`` (K x n) without its ``floor(beta * K)``
    smallest and largest values."""
    k = values.shape[0]
    cut = int(beta * k)
    if cut == 0:
        return values.mean(dim=0)
    return torch.sort(values, dim=0).values[cut : k - cut].mean(dim=0)


class TrimmedMean(RobustStrategy):
    name = "trimmed_mean"
    title = "trimmed mean"

    def __init__(self, fraction: float = 1.0, *, beta: float = 0.2) -> None:
        super().__init__(fraction)
        if not 0 <= beta < 0.5:
            raise ValueError(f"beta must be in [0, 0.5), got {beta}")
        self.beta = beta

    def combine(self, stack: UpdateStack) -> dict[str, torch.Tensor]:
        flat = stack.coordinatewise(lambda values: trimmed_mean_of_columns(values, self.beta))
        return stack.unflatten(flat)
