"""FedAvg (McMahan et al., 2017) with optional server learning rate and momentum (FedAvgM).

The mean of the round's updates, weighted by sample count, is streamed into one accumulator.
The server step treats ``global - mean`` as a pseudo-gradient: with ``server_lr=1`` and no
momentum the new global model is exactly the weighted mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from fl_jobs.aggregation import StreamingWeightedMean
from fl_jobs.strategies.client_fraction import round_half_up, silos_per_round
from fl_jobs.training import LocalUpdate

S = TypeVar("S")


class FedAvg:
    """Client fraction ``fraction`` (C) per round; sample-weighted streaming mean."""

    name = "fedavg"

    def __init__(
        self, fraction: float = 1.0, server_lr: float = 1.0, server_momentum: float = 0.0
    ) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if not server_lr > 0:
            raise ValueError(f"server_lr must be > 0, got {server_lr}")
        if not 0 <= server_momentum < 1:
            raise ValueError(f"server_momentum must be in [0, 1), got {server_momentum}")
        self.fraction = fraction
        self.server_lr = server_lr
        self.server_momentum = server_momentum
        self._velocity: dict[str, torch.Tensor] = {}
        self.last_round_samples = 0
        self.last_round_updates = 0

    @property
    def velocity(self) -> dict[str, torch.Tensor]:
        """Server momentum state; persist it when each round runs in a new process."""
        return self._velocity

    @velocity.setter
    def velocity(self, value: Mapping[str, torch.Tensor]) -> None:
        self._velocity = dict(value)

    def state_dict(self) -> dict[str, Any]:
        """What the strategy carries from round to round (the server momentum), as tensors and
        plain values: a checkpoint stores it and :meth:`load_state_dict` restores it."""
        return {"velocity": {k: v.clone() for k, v in self._velocity.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        velocity = state.get("velocity", {})
        if not isinstance(velocity, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in velocity.values()
        ):
            raise ValueError("FedAvg state: 'velocity' must map tensor names to tensors")
        self._velocity = {str(k): v.clone() for k, v in velocity.items()}

    def configure_round(self, round: int, silos: Sequence[S], rng: np.random.Generator) -> list[S]:
        """``max(1, round(C * K))`` silos drawn without replacement, in their original order."""
        k = silos_per_round(self.fraction, len(silos))
        if k >= len(silos):
            return list(silos)
        chosen = np.sort(rng.choice(len(silos), size=k, replace=False))
        return [silos[i] for i in chosen]

    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Iterable[LocalUpdate]
    ) -> dict[str, torch.Tensor]:
        mean = StreamingWeightedMean()
        for update in updates:
            mean.add(update.weights, update.n_samples)
        averaged = mean.finish()
        self.last_round_samples = int(mean.total_weight)
        self.last_round_updates = mean.count
        if self.server_lr == 1.0 and self.server_momentum == 0.0:
            return averaged
        new: dict[str, torch.Tensor] = {}
        for key, current in global_weights.items():
            if not current.is_floating_point():
                new[key] = averaged[key]
                continue
            step = current - averaged[key]  # pseudo-gradient
            if self.server_momentum > 0:
                velocity = self._velocity.get(key)
                step = step if velocity is None else velocity.mul_(self.server_momentum).add_(step)
                self._velocity[key] = step
            new[key] = current - self.server_lr * step
        return new


__all__ = ["FedAvg", "round_half_up", "silos_per_round"]
