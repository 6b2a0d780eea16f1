"""A plain in-place SGD step for local training without differential privacy.

The same update as ``torch.optim.SGD`` (momentum without dampening or Nesterov, L2 weight
decay added to the gradient), plus FedProx's proximal term: ``mu * (w - w_global)`` added to
the gradient, the gradient of ``mu / 2 * ||w - w_global||^2``. Per parameter ``p`` with
gradient ``g``::

    g = g + weight_decay * p + mu * (p - anchor)
    buf = g (first step) or momentum * buf + g
    p = p - lr * buf (or g without momentum)

Why not ``torch.optim``: constructing its first optimizer imports ``torch._dynamo``, about a
second of CPU in every fresh process (each silo worker, each Azure ML train step), for a
step that is a few tensor operations here. Deterministic: the same inputs give the same bits.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class PlainSGD:
    """SGD over ``params`` with ``lr``, ``momentum``, ``weight_decay`` and a proximal term of
    weight ``mu`` pulling towards ``anchor`` (the round's global parameters, in ``params``
    order; needed when ``mu > 0``)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        *,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        mu: float = 0.0,
        anchor: list[torch.Tensor] | None = None,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        if mu > 0 and (anchor is None or len(anchor) != len(self.params)):
            raise ValueError("a proximal term (mu > 0) needs one anchor tensor per parameter")
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.mu = mu
        self.anchor = anchor if mu > 0 else None
        self._buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            if self.weight_decay:
                grad = grad.add(p, alpha=self.weight_decay)
            if self.anchor is not None:
                grad = proximal_gradient(grad, p, self.anchor[i], self.mu)
            if self.momentum:
                buf = self._buffers[i]
                if buf is None:
                    buf = self._buffers[i] = torch.clone(grad).detach()
                else:
                    buf.mul_(self.momentum).add_(grad)
                grad = buf
            p.add_(grad, alpha=-self.lr)


def proximal_gradient(
    grad: torch.Tensor, param: torch.Tensor, anchor: torch.Tensor, mu: float
) -> torch.Tensor:
    """``grad + mu * (param - anchor)`` as a new tensor: FedProx's term."""
    return grad.add(param - anchor, alpha=mu)
