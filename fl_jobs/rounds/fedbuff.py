"""FedBuff's fold (Nguyen et al., "Federated Learning with Buffered Asynchronous Aggregation",
AISTATS 2022, Algorithm 1): the buffered updates, each taken against the model it trained
from and down-weighted by its staleness, averaged into one pseudo-update.

A silo that trained from version ``b`` of the global model, folded when the model is at
version ``t``, has staleness ``tau = t - b`` and weight ``s(tau) = 1 / sqrt(1 + tau)`` (the
paper's choice). The fold is ``delta = (1 / M) * sum_i s(tau_i) * (y_i - x_{b_i})`` over the
``M`` buffered updates, summed in silo order (so the same buffer always gives the same bits),
and the strategy's server step then moves ``x_t`` by it exactly as it moves a synchronous
round's mean: the fold is handed over as the mean ``x_t + delta`` of weight ``M``. The paper
averages with equal weights, not sample counts, and so does this fold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from fl_jobs.strategies.base import WeightedMean


def staleness_weight(staleness: int) -> float:
    """``1 / sqrt(1 + tau)``: a fresh update counts fully, one a version old 0.71."""
    if staleness < 0:
        raise ValueError(f"staleness must be >= 0, got {staleness}")
    return 1.0 / math.sqrt(1.0 + staleness)


@dataclass(frozen=True)
class Buffered:
    """One arrived update: the weights the silo trained to and the version it trained from."""

    silo: str
    weights: Mapping[str, torch.Tensor]
    base: int


def fold(
    version: int,
    current: Mapping[str, torch.Tensor],
    buffered: list[Buffered],
    models: Mapping[int, Mapping[str, torch.Tensor]],
    order: Mapping[str, int],
) -> WeightedMean:
    """The buffer as the mean a strategy's ``server_step`` takes: ``current + delta``.

    ``models`` holds every base version the buffer refers to; ``order`` is the silos' fixed
    order. Tensors that are not floating point (counters) keep the current model's values.
    """
    if not buffered:
        raise ValueError("a fold needs at least one buffered update")
    m = len(buffered)
    ordered = sorted(buffered, key=lambda b: order[b.silo])
    delta = {k: torch.zeros_like(v) for k, v in current.items() if v.is_floating_point()}
    for item in ordered:
        if item.base > version:
            raise ValueError(f"{item.silo} trained from version {item.base}, after {version}")
        weight = staleness_weight(version - item.base) / m
        base = models[item.base]
        for key, acc in delta.items():
            acc.add_(item.weights[key] - base[key], alpha=weight)
    mean = {k: (current[k] + delta[k]) if k in delta else current[k].clone() for k in current}
    return WeightedMean(weights=mean, total_weight=float(m), count=m)
