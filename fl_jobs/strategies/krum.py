"""Krum and Multi-Krum (Blanchard et al., "Machine Learning with Adversaries: Byzantine
Tolerant Gradient Descent", NeurIPS 2017).

Each update is scored by the sum of its squared Euclidean distances to its ``K - f - 2``
nearest other updates (``f``: how many silos may be Byzantine). Krum (``m = 1``) takes the
update of lowest score as the new global model; Multi-Krum (``m > 1``) averages the ``m``
lowest-scored updates, weighted by sample count (as Flower's ``Krum`` with
``num_clients_to_keep``). The guarantee needs ``K >= 2f + 3`` updates a round, which the job
config checks against the silos selected per round.

Holds the round's updates (K models) and a K x K distance matrix; each update's distances to
the earlier ones are computed as it arrives, while the round waits for the others.
"""

from __future__ import annotations

import torch

from fl_jobs.core.aggregation import StreamingWeightedMean
from fl_jobs.strategies.registry import strategy_title
from fl_jobs.strategies.stacked import RobustStrategy, UpdateStack


def squared_distances(row: torch.Tensor, others: list[torch.Tensor]) -> list[float]:
    """``||row - other||^2`` for each of ``others``, accumulated in float64."""
    return [float(torch.sub(other, row).square_().sum(dtype=torch.float64)) for other in others]


def krum_scores(distances: torch.Tensor, f: int) -> list[float]:
    """Each update's sum of squared distances to its ``max(1, K - f - 2)`` nearest others."""
    k = distances.shape[0]
    if k == 1:
        return [0.0]
    nearest = min(max(1, k - f - 2), k - 1)
    scores = []
    for i in range(k):
        others = torch.cat([distances[i, :i], distances[i, i + 1 :]])
        scores.append(float(torch.sort(others).values[:nearest].sum()))
    return scores


def lowest(scores: list[float], m: int) -> list[int]:
    """Indices of the ``m`` lowest scores, in index order (ties go to the earlier update)."""
    ranked = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    return sorted(ranked[:m])


class Krum(RobustStrategy):
    name = "krum"
    title = "Krum"

    def __init__(self, fraction: float = 1.0, *, f: int = 1, m: int = 1) -> None:
        super().__init__(fraction)
        if f < 0 or m < 1:
            raise ValueError(f"f must be >= 0 and m >= 1, got f={f}, m={m}")
        self.f = f
        self.m = m
        self.title = strategy_title(self.name, {"m": m})
        #: Squared distances of each update to the earlier ones (the round in progress).
        self._rows: list[list[float]] = []
        #: The silos whose updates made the last aggregate.
        self.last_chosen: list[str] = []

    def added(self, stack: UpdateStack) -> None:
        if len(stack) == 1:
            self._rows = []
        self._rows.append(squared_distances(stack.rows[-1], stack.rows[:-1]))

    def combine(self, stack: UpdateStack) -> dict[str, torch.Tensor]:
        k = len(stack)
        distances = torch.zeros(k, k, dtype=torch.float64)
        for i, row in enumerate(self._rows):
            for j, value in enumerate(row):
                distances[i, j] = distances[j, i] = value
        chosen = lowest(krum_scores(distances, self.f), min(self.m, k))
        self._rows = []
        self.last_chosen = [stack.silos[i] for i in chosen]
        if len(chosen) == 1:
            return stack.unflatten(stack.rows[chosen[0]])
        mean = StreamingWeightedMean()
        for i in chosen:
            mean.add(stack.unflatten(stack.rows[i]), stack.samples[i])
        return mean.finish()
