"""FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020).

The server side is FedAvg's; the difference is local: every silo adds the proximal term
``mu / 2 * ||w - w_global||^2`` to its loss, which keeps its local model near the round's
global model however many local steps it takes. The strategy sends ``mu`` to each silo with
its train request (``{"proximal_mu": mu}``); local training adds ``mu * (w - w_global)`` to
the gradient (:mod:`fl_jobs.local_sgd`). ``mu = 0`` is FedAvg.
"""

from __future__ import annotations

from fl_jobs.strategies.base import SiloConfig
from fl_jobs.strategies.fedavg import FedAvg


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
