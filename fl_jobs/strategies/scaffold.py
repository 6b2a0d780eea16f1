"""SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated
Learning", ICML 2020, Algorithm 1 with option II).

Under strong label skew each silo's local steps drift towards its own optimum. SCAFFOLD
corrects every local step with control variates: the server's ``c`` (an estimate of the
global update direction) and the silo's own ``c_i`` (of its local direction)::

    silo:   y <- y - lr * (g_i(y) - c_i + c)                  for each of its K local steps
            c_i+ = c_i - c + (x - y) / (K * lr)                (option II)
                 = (1 / K) * sum of the K gradients g_i(y)     (the same, under plain SGD)
            sends  dy = y - x  and  dc = c_i+ - c_i;  keeps c_i+
    server: x <- x + eta_g * mean(dy)     c <- c + (1 / N) * sum(dc)   (|S| of N silos)

The silo computes ``c_i+`` as the mean of the gradients its steps computed (the second form):
under plain SGD it is option II exactly, and it stays right with momentum, where option II's
formula would overstate the local direction by ``1 / (1 - momentum)`` (MNIST's default 0.9
made the control variates ten times too large and training diverged). Under DP-SGD these are
the clipped and noised gradients, so ``c_i`` is post-processing of what DP-SGD released.

Here ``mean(dy)`` is sample-weighted as FedAvg's (the paper averages with equal weights; with
equal silo sizes the two agree), and ``sum(dc) / N`` is exactly the paper's
``|S|/N * mean(dc)``, so ``c`` stays the mean of every silo's ``c_i``. ``c`` is the
strategy's state (checkpointed); ``c_i`` is the silo's, in its own store
(:class:`fl_jobs.core.silo_hook.HookState`), keyed by run and round so that a redone round reads
what the first attempt read. ``c`` travels with the global model and ``dc`` with each update
(:mod:`fl_jobs.core.silo_hook`). The control variates cover every floating-point entry of the
model's state; entries without a gradient (buffers) keep ``c_i = 0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fl_jobs.core.aggregation import StreamingWeightedMean
from fl_jobs.core.silo_hook import (
    GradientTerm,
    SiloHook,
    SiloRoundInputs,
    split_extras,
)
from fl_jobs.core.training import LocalUpdate
from fl_jobs.strategies.base import S, Strategy, check_tensor_state

C = "c/"
"""The server's control variate, sent with the global model: ``~c/<key>``."""
DC = "dc/"
"""A silo's control-variate change, sent with its update: ``~dc/<key>``."""
CI = "ci/"
"""The silo's own control variate in its state."""


def _floats(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights.items() if v.is_floating_point()}


class ScaffoldTerm:
    """``grad + c - c_i`` for parameter ``index``; it also sums the gradients it corrects
    (the local objective's, before the correction) and counts the steps."""

    def __init__(self, corrections: list[torch.Tensor]) -> None:
        self.corrections = corrections
        self.sums: list[torch.Tensor | None] = [None] * len(corrections)
        self.steps = 0

    def __call__(self, index: int, grad: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        correction = self.corrections[index]
        if correction.device != grad.device:  # once, on a GPU silo
            correction = self.corrections[index] = correction.to(grad.device)
        if index == 0:
            self.steps += 1
        total = self.sums[index]
        self.sums[index] = grad.detach().clone() if total is None else total.add_(grad)
        return grad + correction

    def mean_gradients(self, like: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
        """The mean of the corrected-for gradients over the steps (on the CPU); None before
        any step."""
        if self.steps == 0:
            return None
        return [
            torch.zeros_like(ref) if total is None else total.cpu() / self.steps
            for total, ref in zip(self.sums, like, strict=True)
        ]


class ScaffoldHook(SiloHook):
    """The silo side: the corrected steps, ``c_i`` in the silo's store, ``dc`` sent back."""

    state_name = "scaffold"
    keeps_start = True  # the control variates' shapes

    def check_received(
        self,
        received: Mapping[str, torch.Tensor],
        names: Sequence[str],
        start: Sequence[torch.Tensor],
    ) -> None:
        shapes = dict(zip(names, (t.shape for t in start), strict=True))
        missing = [n for n in names if C + n not in received]
        if missing:
            raise ValueError(f"SCAFFOLD's control variate for {missing[0]!r} did not arrive")
        for key, value in received.items():
            if not key.startswith(C):
                raise ValueError(f"unexpected strategy tensor {key!r} in the model")
            name = key[len(C) :]
            if name in shapes and value.shape != shapes[name]:
                raise ValueError(f"control variate {name!r} has shape {tuple(value.shape)}")
            if not torch.isfinite(value).all():
                raise ValueError(f"control variate {name!r} is not finite")

    def terms(self, inputs: SiloRoundInputs) -> list[GradientTerm]:
        assert inputs.state is not None
        own = inputs.state.latest_before(inputs.round) or {}
        inputs.notes["c_i"] = own
        corrections = [
            inputs.received[C + name] - own.get(CI + name, torch.zeros_like(start))
            for name, start in zip(inputs.names, inputs.start, strict=True)
        ]
        term = ScaffoldTerm(corrections)
        inputs.notes["term"] = term
        return [term]

    def reply(
        self, inputs: SiloRoundInputs, trained: Sequence[torch.Tensor], lr: float
    ) -> dict[str, torch.Tensor]:
        assert inputs.state is not None
        own: Mapping[str, torch.Tensor] = inputs.notes.get("c_i") or {}  # type: ignore[assignment]
        term = inputs.notes["term"]
        assert isinstance(term, ScaffoldTerm)
        means = term.mean_gradients(inputs.start)
        new_ci: dict[str, torch.Tensor] = {}
        dc: dict[str, torch.Tensor] = {}
        for i, (name, start) in enumerate(zip(inputs.names, inputs.start, strict=True)):
            c_i = own.get(CI + name, torch.zeros_like(start))
            # nothing trained: nothing learned about the local direction
            updated = c_i.clone() if means is None else means[i]
            new_ci[CI + name] = updated
            dc[DC + name] = updated - c_i
        for key, value in inputs.received.items():  # entries without a gradient: no change
            name = key[len(C) :]
            if DC + name not in dc:
                dc[DC + name] = torch.zeros_like(value)
        inputs.state.save(inputs.round, new_ci)  # in the silo's store before dc leaves
        return dc


class Scaffold(Strategy):
    """FedAvg's selection and mean, corrected silo steps, and the server control variate."""

    name = "scaffold"
    title = "SCAFFOLD"

    def __init__(self, fraction: float = 1.0, *, eta_g: float = 1.0) -> None:
        super().__init__(fraction)
        if not eta_g > 0:
            raise ValueError(f"eta_g must be > 0, got {eta_g}")
        self.eta_g = eta_g
        self.c: dict[str, torch.Tensor] = {}
        self.n_silos = 0

    def configure_round(self, round: int, silos: Sequence[S], rng: np.random.Generator) -> list[S]:
        self.n_silos = len(silos)
        return super().configure_round(round, silos, rng)

    def silo_hook(self) -> SiloHook:
        return ScaffoldHook()

    def _control(self, global_weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.c:  # round 1: every c_i is 0, so is their mean
            self.c = {k: torch.zeros_like(v) for k, v in _floats(global_weights).items()}
        return self.c

    def to_silos(
        self, round: int, global_weights: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        return {C + k: v for k, v in self._control(global_weights).items()}

    def reply_template(self, global_weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {DC + k: v for k, v in _floats(global_weights).items()}

    def aggregate(
        self,
        round: int,
        global_weights: Mapping[str, torch.Tensor],
        updates: Iterable[LocalUpdate],
    ) -> dict[str, torch.Tensor]:
        mean = StreamingWeightedMean()
        dc_sum: dict[str, torch.Tensor] = {}
        for update in updates:
            model, extras = split_extras(update.weights)
            mean.add(model, update.n_samples)
            for key, value in extras.items():
                name = key[len(DC) :]
                dc_sum[name] = dc_sum[name] + value if name in dc_sum else value.clone()
        if mean.count == 0:
            raise ValueError("SCAFFOLD needs at least one update")
        averaged = mean.finish()
        new: dict[str, torch.Tensor] = {}
        for key, current in global_weights.items():
            if current.is_floating_point() and self.eta_g != 1.0:
                new[key] = current + self.eta_g * (averaged[key] - current)
            else:
                new[key] = averaged[key]
        control = self._control(global_weights)
        if not self.n_silos:
            raise RuntimeError("SCAFFOLD aggregated before configure_round named the silos")
        for name, total in dc_sum.items():
            control[name] = control[name] + total / self.n_silos
        return new

    def state_dict(self) -> dict[str, Any]:
        return {"c": {k: v.clone() for k, v in self.c.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.c = check_tensor_state("SCAFFOLD", state, ["c"])["c"]
