"""FedAdagrad (Reddi et al., "Adaptive Federated Optimization", ICLR 2021): Adagrad on the
server.

``v = v + delta^2``: the sum of every round's squared pseudo-gradient, so each coordinate's
step shrinks with the movement it has already had. ``beta_1 = 0`` (the default, as in
Flower) makes ``m`` the round's own pseudo-gradient.
"""

from __future__ import annotations

import torch

from fl_jobs.strategies.fedopt import FedOpt


class FedAdagrad(FedOpt):
    name = "fedadagrad"
    title = "FedAdagrad"

    def __init__(
        self,
        fraction: float = 1.0,
        *,
        eta: float = 0.1,
        beta_1: float = 0.0,
        tau: float = 1e-3,
    ) -> None:
        super().__init__(fraction, eta=eta, beta_1=beta_1, beta_2=0.0, tau=tau)

    def second_moment(self, v: torch.Tensor, delta: torch.Tensor) -> None:
        v.addcmul_(delta, delta)
