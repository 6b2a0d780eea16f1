"""FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020).

The server side is FedAvg's; the difference is local: every silo adds the proximal term
``mu / 2 * ||w - w_global||^2`` to its loss, which keeps its local model near the round's
global model however many local steps it takes. The strategy sends ``mu`` to each silo with
its train request (``{"proximal_mu": mu}``); its silo hook (:class:`FedProxHook`) adds
``mu * (w - w_global)`` to every step's gradient. ``mu = 0`` is FedAvg.
"""

from __future__ import annotations

import torch

from fl_jobs.core.silo_hook import GradientTerm, SiloHook, SiloRoundInputs
from fl_jobs.strategies.base import SiloConfig
from fl_jobs.strategies.fedavg import FedAvg


class ProximalTerm:
    """``grad + mu * (param - anchor)``: the gradient of ``mu / 2 * ||w - anchor||^2``."""

    def __init__(self, mu: float, anchor: list[torch.Tensor]) -> None:
        self.mu, self.anchor = mu, anchor

    def __call__(self, index: int, grad: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        anchor = self.anchor[index]
        if anchor.device != param.device:  # once, on a GPU silo
            anchor = self.anchor[index] = anchor.to(param.device)
        return grad.add(param - anchor, alpha=self.mu)


class FedProxHook(SiloHook):
    """The silo side: the proximal term towards the round's global parameters."""

    settings_keys = frozenset({"proximal_mu"})
    keeps_start = True  # the proximal term's anchor

    def check_settings(self, settings: dict[str, object]) -> dict[str, float]:  # type: ignore[override]
        values = super().check_settings(settings)
        if values.get("proximal_mu", 0.0) < 0:
            raise ValueError(f"proximal_mu must be >= 0, got {values['proximal_mu']}")
        return values

    def terms(self, inputs: SiloRoundInputs) -> list[GradientTerm]:
        mu = inputs.settings.get("proximal_mu", 0.0)
        return [ProximalTerm(mu, inputs.start)] if mu > 0 else []


class FedProx(FedAvg):
    """FedAvg whose silos train with a proximal term of weight ``mu``."""

    name = "fedprox"
    title = "FedProx"

    def __init__(
        self,
        fraction: float = 1.0,
        server_lr: float = 1.0,
        server_momentum: float = 0.0,
        *,
        mu: float = 0.01,
    ) -> None:
        super().__init__(fraction, server_lr, server_momentum)
        if not mu >= 0:
            raise ValueError(f"mu must be >= 0, got {mu}")
        self.mu = mu

    def silo_config(self, round: int, silo: str) -> SiloConfig:
        return {"proximal_mu": float(self.mu)}

    def silo_hook(self) -> SiloHook:
        return FedProxHook()
