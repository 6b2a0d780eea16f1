"""FedAdam (Reddi et al., "Adaptive Federated Optimization", ICLR 2021): Adam on the server.

``v = beta_2 * v + (1 - beta_2) * delta^2``. The paper's Algorithm 2 uses no bias
correction; ``bias_correction=True`` scales the step as Adam does (Kingma and Ba, 2015) in
round t: ``eta * sqrt(1 - beta_2^t) / (1 - beta_1^t)``. (Flower's FedAdam always corrects,
with the exponent ``t + 1`` in its round t.)
"""

from __future__ import annotations

import math

import torch

from fl_jobs.strategies.fedopt import FedOpt


class FedAdam(FedOpt):
    name = "fedadam"
    title = "FedAdam"

    def __init__(
        self,
        fraction: float = 1.0,
        *,
        eta: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        tau: float = 1e-3,
        bias_correction: bool = False,
    ) -> None:
        super().__init__(fraction, eta=eta, beta_1=beta_1, beta_2=beta_2, tau=tau)
        self.bias_correction = bias_correction

    def second_moment(self, v: torch.Tensor, delta: torch.Tensor) -> None:
        v.mul_(self.beta_2).addcmul_(delta, delta, value=1 - self.beta_2)

    def step_size(self, round: int) -> float:
        if not self.bias_correction:
            return self.eta
        return self.eta * math.sqrt(1 - self.beta_2**round) / (1 - self.beta_1**round)
