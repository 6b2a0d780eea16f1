"""Adaptive server optimisers (Reddi et al., "Adaptive Federated Optimization", ICLR 2021):
the shared part of FedAdam, FedYogi and FedAdagrad.

Each round, per floating tensor, with the round's weighted mean ``mean`` and the global
weights ``x`` (Algorithm 2 of the paper)::

    delta = mean - x                         # the pseudo-gradient, as an update direction
    m     = beta_1 * m + (1 - beta_1) * delta
    v     = second_moment(v, delta ** 2)     # Adam, Yogi or Adagrad
    x     = x + eta * m / (sqrt(v) + tau)

``m`` and ``v`` start at zero (as in Adam; the paper allows any ``v >= tau^2``) and are the
strategy's state. Non-floating tensors (counters) take the mean's value, as in FedAvg. The
arithmetic is in the model's dtype, in place in the mean's buffer: besides ``m`` and ``v`` the
step needs at most one tensor-sized temporary at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fl_jobs.strategies.base import MeanStrategy, WeightedMean, check_tensor_state


def first_moment(m: torch.Tensor, delta: torch.Tensor, beta_1: float) -> None:
    """``m = beta_1 * m + (1 - beta_1) * delta``, in place."""
    m.mul_(beta_1).add_(delta, alpha=1 - beta_1)


def adaptive_step(
    current: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    eta: float,
    tau: float,
    out: torch.Tensor,
) -> torch.Tensor:
    """``current + eta * m / (sqrt(v) + tau)`` written into ``out`` (a scratch buffer)."""
    torch.sqrt(v, out=out).add_(tau)
    torch.div(m, out, out=out)
    return out.mul_(eta).add_(current)


class FedOpt(MeanStrategy):
    """Server-side adaptive optimiser on the round's pseudo-gradient; subclasses give the
    second moment's rule (:meth:`second_moment`)."""

    def __init__(
        self,
        fraction: float = 1.0,
        *,
        eta: float,
        beta_1: float,
        beta_2: float,
        tau: float,
    ) -> None:
        super().__init__(fraction)
        if not eta > 0:
            raise ValueError(f"eta must be > 0, got {eta}")
        if not 0 <= beta_1 < 1 or not 0 <= beta_2 < 1:
            raise ValueError(f"beta_1 and beta_2 must be in [0, 1), got {beta_1}, {beta_2}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.eta = eta
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.tau = tau
        self._m: dict[str, torch.Tensor] = {}
        self._v: dict[str, torch.Tensor] = {}

    def second_moment(self, v: torch.Tensor, delta: torch.Tensor) -> None:
        """Update ``v`` in place from the pseudo-gradient (its square, elementwise)."""
        raise NotImplementedError

    def step_size(self, round: int) -> float:
        """The server learning rate of ``round`` (FedAdam may bias-correct it)."""
        return self.eta

    def state_dict(self) -> dict[str, Any]:
        return {
            "m": {k: t.clone() for k, t in self._m.items()},
            "v": {k: t.clone() for k, t in self._v.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        tensors = check_tensor_state(self.title, state, ["m", "v"])
        if set(tensors["m"]) != set(tensors["v"]):
            raise ValueError(f"{self.title} state: 'm' and 'v' hold different tensors")
        self._m, self._v = tensors["m"], tensors["v"]

    def server_step(
        self, round: int, global_weights: Mapping[str, torch.Tensor], mean: WeightedMean
    ) -> dict[str, torch.Tensor]:
        eta = self.step_size(round)
        new: dict[str, torch.Tensor] = {}
        for key, current in global_weights.items():
            averaged = mean.weights[key]
            if not current.is_floating_point():
                new[key] = averaged
                continue
            delta = averaged.sub_(current)  # the mean's buffer now holds the pseudo-gradient
            m = self._m.setdefault(key, torch.zeros_like(current))
            v = self._v.setdefault(key, torch.zeros_like(current))
            first_moment(m, delta, self.beta_1)
            self.second_moment(v, delta)
            new[key] = adaptive_step(current, m, v, eta, self.tau, out=delta)
        return new
