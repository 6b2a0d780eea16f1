"""A toy silo-side strategy in one file, as a newcomer would add one: FedAvg on the server,
and silos that damp every local gradient by a per-round factor the server sends as a tensor,
keep a count of their rounds in their store, and send their gradient-step count back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from fl_jobs.core.silo_hook import (
    GradientTerm,
    SiloHook,
    SiloRoundInputs,
    StepCounter,
    split_extras,
)
from fl_jobs.core.training import LocalUpdate
from fl_jobs.strategies.fedavg import FedAvg


class DampedHook(SiloHook):
    state_name = "damped"

    def check_received(
        self,
        received: Mapping[str, torch.Tensor],
        names: Sequence[str],
        start: Sequence[torch.Tensor],
    ) -> None:
        if set(received) != {"factor"}:
            raise ValueError(f"expected the damping factor, got {sorted(received)}")

    def terms(self, inputs: SiloRoundInputs) -> list[GradientTerm]:
        factor = float(inputs.received["factor"])
        return [StepCounter(inputs), lambda i, grad, p: grad * factor]

    def reply(
        self, inputs: SiloRoundInputs, trained: Sequence[torch.Tensor], lr: float
    ) -> dict[str, torch.Tensor]:
        assert inputs.state is not None
        before = inputs.state.latest_before(inputs.round) or {"rounds": torch.zeros(())}
        inputs.state.save(inputs.round, {"rounds": before["rounds"] + 1})
        return {"steps": torch.tensor(float(inputs.steps)), "rounds": before["rounds"] + 1}


class Damped(FedAvg):
    name = "damped"
    title = "Damped"

    def __init__(self, fraction: float = 1.0, server_lr: float = 1.0, momentum: float = 0.0):
        super().__init__(fraction, server_lr, momentum)
        self.seen: list[dict[str, float]] = []

    def silo_hook(self) -> SiloHook:
        return DampedHook()

    def to_silos(self, round: int, global_weights: Mapping[str, torch.Tensor]):
        return {"factor": torch.tensor(0.5)}

    def reply_template(self, global_weights: Mapping[str, torch.Tensor]):
        return {"steps": torch.zeros(()), "rounds": torch.zeros(())}

    def aggregate(
        self, round: int, global_weights: Mapping[str, torch.Tensor], updates: Iterable[LocalUpdate]
    ) -> dict[str, torch.Tensor]:
        plain = []
        for update in updates:
            model, extras = split_extras(update.weights)
            self.seen.append({k: float(v) for k, v in extras.items()})
            plain.append(LocalUpdate(model, update.n_samples, update.metrics, update.silo))
        return super().aggregate(round, global_weights, plain)
