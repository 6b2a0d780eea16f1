"""A plain in-place SGD step for local training without differential privacy.

The same update as ``torch.optim.SGD`` (momentum without dampening or Nesterov, L2 weight
decay added to the gradient), plus the terms a strategy's silo hook adds to the gradient
(:mod:`fl_jobs.core.silo_hook`: FedProx's proximal term, SCAFFOLD's control-variate correction).
Per parameter ``p`` (index ``i``) with gradient ``g``::

    g = g + weight_decay * p
    g = term(i, g, p) for each term, in order
    buf = g (first step) or momentum * buf + g
    p = p - lr * buf (or g without momentum)

Why not ``torch.optim``: constructing its first optimizer imports ``torch._dynamo``, about a
second of CPU in every fresh process (each silo worker, each Azure ML train step), for a
step that is a few tensor operations here. Deterministic: the same inputs give the same bits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from fl_jobs.core.silo_hook import GradientTerm, apply_terms


class PlainSGD:
    """SGD over ``params`` with ``lr``, ``momentum``, ``weight_decay`` and the gradient
    ``terms`` of a strategy's silo hook (indexed in ``params`` order)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        *,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        terms: Sequence[GradientTerm] = (),
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.terms = list(terms)
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
            if self.terms:
                grad = apply_terms(self.terms, i, grad, p)
            if self.momentum:
                buf = self._buffers[i]
                if buf is None:
                    buf = self._buffers[i] = torch.clone(grad).detach()
                else:
                    buf.mul_(self.momentum).add_(grad)
                grad = buf
            p.add_(grad, alpha=-self.lr)
