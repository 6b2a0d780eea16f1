"""Screening a round's updates before they are aggregated.

Two checks, each rejecting an update with a reason the caller records (console, MLflow,
summary) rather than stopping the job; whether the round can go on without it is the
caller's quorum decision:

* every update is validated as it is read (:func:`fl_jobs.core.model_io.read_update`): only the
  global model's tensor names, the same shapes and dtypes, finite values, a positive sample
  count;
* optionally (on by default for robust strategies), its norm: an update whose distance from
  the global model, ``||w - w_global||``, is more than ``limit`` times the round's median is
  rejected. Only large norms are: an update much smaller than the others moves the aggregate
  little, while a large one can dominate a mean. A sign-flipped update keeps its norm; the
  robust strategies are what withstand it. The median needs the whole round, so with norm
  screening the round's updates are held until the last one arrived (K models).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch

from fl_jobs.core.training import LocalUpdate

#: Norm screening needs this many updates: with two, neither is "outside the others".
MIN_UPDATES_FOR_NORMS = 3

Reject = Callable[[str, str], None]


def update_norm(
    weights: Mapping[str, torch.Tensor], global_weights: Mapping[str, torch.Tensor]
) -> float:
    """``||w - w_global||`` over the floating tensors, accumulated in float64."""
    total = 0.0
    for key, reference in global_weights.items():
        if reference.is_floating_point():
            diff = torch.sub(weights[key], reference)
            total += float(diff.square_().sum(dtype=torch.float64))
    return total**0.5


def norm_outliers(norms: Mapping[str, float], limit: float) -> dict[str, str]:
    """Silo -> reason for every norm above ``limit`` times the median of ``norms``."""
    if len(norms) < MIN_UPDATES_FOR_NORMS:
        return {}
    median = statistics.median(norms.values())
    return {
        silo: (
            f"update norm {norm:.4g} is {norm / median:.1f}x the round's median {median:.4g} "
            f"(limit {limit:g}x)"
            if median > 0
            else f"update norm {norm:.4g} while the round's median is 0"
        )
        for silo, norm in norms.items()
        if norm > limit * median
    }


def screen_norms(
    updates: Iterable[LocalUpdate],
    global_weights: Mapping[str, torch.Tensor],
    limit: float,
    reject: Reject,
) -> Iterator[LocalUpdate]:
    """The updates whose norm is within ``limit`` times the round's median, in their order;
    ``reject(silo, reason)`` is called for each of the others before any is yielded."""
    held: list[tuple[str, LocalUpdate]] = []
    norms: dict[str, float] = {}
    for update in updates:
        silo = update.silo or f"update-{len(held) + 1}"
        norms[silo] = update_norm(update.weights, global_weights)
        held.append((silo, update))
    outliers = norm_outliers(norms, limit)
    for silo, reason in outliers.items():
        reject(silo, reason)
    held.reverse()
    while held:  # hand each over and drop our reference, so the consumer can free it
        silo, update = held.pop()
        if silo not in outliers:
            yield update
        del update
