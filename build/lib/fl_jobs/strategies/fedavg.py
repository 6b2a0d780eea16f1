"""FedAvg (McMahan et al., 2017) with optional server learning rate and momentum (FedAvgM,
Hsu et al., 2019).

The mean of the round's updates, weighted by sample count, is streamed into one accumulator.
The server step treats ``global - mean`` as a pseudo-gradient: with ``server_lr=1`` and no
momentum the new global model is exactly the weighted mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fl_jobs.strategies.base import MeanStrategy, WeightedMean, check_tensor_state
from fl_jobs.strategies.client_fraction import round_half_up, silos_per_round


class FedAvg(MeanStrategy):
    """Client fraction ``fraction`` (C) per round; sample-weighted streaming mean; server SGD
    with ``server_lr`` and ``server_momentum`` on the pseudo-gradient."""

    name = "fedavg"
    title = "FedAvg"

    def __init__(
        self, fraction: float = 1.0, server_lr: float = 1.0, server_momentum: float = 0.0
    ) -> None:
        super().__init__(fraction)
        if not server_lr > 0:
            raise ValueError(f"server_lr must be > 0, got {server_lr}")
        if not 0 <= server_momentum < 1:
            raise ValueError(f"server_momentum must be in [0, 1), got {server_momentum}")
        self.server_lr = server_lr
        self.server_momentum = server_momentum
        self._velocity: dict[str, torch.Tensor] = {}

    @property
    def velocity(self) -> dict[str, torch.Tensor]:
        """Server momentum state (FedAvgM)."""
        return self._velocity

    def state_dict(self) -> dict[str, Any]:
        """The server momentum, as tensors: a checkpoint stores it and
        :meth:`load_state_dict` restores it."""
        return {"velocity": {k: v.clone() for k, v in self._velocity.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._velocity = check_tensor_state("FedAvg", state, ["velocity"])["velocity"]

    def server_step(
        self, round: int, global_weights: Mapping[str, torch.Tensor], mean: WeightedMean
    ) -> dict[str, torch.Tensor]:
        averaged = mean.weights
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
