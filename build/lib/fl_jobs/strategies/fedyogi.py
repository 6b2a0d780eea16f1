"""FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021): Yogi on the server
(Zaheer et al., 2018).

``v = v - (1 - beta_2) * delta^2 * sign(v - delta^2)``: like Adam's second moment, but ``v``
moves towards ``delta^2`` by an additive step instead of a multiplicative one, so a sudden
jump in the pseudo-gradient cannot collapse the effective learning rate.
"""

from __future__ import annotations

import torch

from fl_jobs.strategies.fedopt import FedOpt


class FedYogi(FedOpt):
    name = "fedyogi"
    title = "FedYogi"

    def __init__(
        self,
        fraction: float = 1.0,
        *,
        eta: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        tau: float = 1e-3,
    ) -> None:
        super().__init__(fraction, eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau)

    def second_moment(self, v: torch.Tensor, delta: torch.Tensor) -> None:
        delta_sq = delta * delta
        v.sub_(delta_sq.mul_(torch.sign(v - delta_sq)).mul_(1 - self.beta_2))
