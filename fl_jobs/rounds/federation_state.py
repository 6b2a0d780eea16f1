"""What a federation is after each round, for every engine: the round records, the state a
resumed job continues from exactly, and what the records say about privacy spent and about a
diverged learning rate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from fl_jobs.config import JobConfig
    from fl_jobs.local.prepare import PreparedJob


@dataclass
class RoundRecord:
    """One round: who trained, the global model's test metrics, each silo's metrics, the
    silos left out (silo -> why) and the silos whose update screening rejected (silo -> why);
    with secure aggregation, how its sum was reached (attempts, silos whose masks were
    removed).

    A rejected silo did train: its metrics (and, with DP, the privacy it spent) are kept."""

    round: int
    selected: list[str]
    global_metrics: dict[str, float]
    silo_metrics: dict[str, dict[str, float]]
    seconds: float
    dropped: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    secure_aggregation: dict[str, Any] | None = None
    #: With silo-level DP: its mode and the epsilon spent after this round (fl_jobs.silo.silo_dp).
    silo_dp: dict[str, Any] | None = None
    #: With asynchronous rounds (fl_jobs.rounds.async_engine): the buffer size, each folded update's
    #: task, base version and staleness, and the next task number.
    asynchronous: dict[str, Any] | None = None

    def to_plain(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "selected": list(self.selected),
            "global_metrics": dict(self.global_metrics),
            "silo_metrics": {k: dict(v) for k, v in self.silo_metrics.items()},
            "seconds": self.seconds,
            "dropped": dict(self.dropped),
            "rejected": dict(self.rejected),
            "secure_aggregation": None
            if self.secure_aggregation is None
            else dict(self.secure_aggregation),
            "silo_dp": None if self.silo_dp is None else dict(self.silo_dp),
            "asynchronous": None if self.asynchronous is None else dict(self.asynchronous),
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> RoundRecord:
        return cls(**data)


@dataclass
class FederationState:
    """Everything after round ``round`` that a resumed job needs to continue exactly."""

    round: int
    global_weights: dict[str, torch.Tensor]
    strategy: str
    strategy_state: dict[str, Any]
    rng_state: dict[str, Any]
    history: list[RoundRecord]
    initial_metrics: dict[str, float]


def suggested_lr(config: JobConfig, prepared: PreparedJob, round: int) -> float:
    """A learning rate to try after divergence: the example's default if the job used more;
    else a hundredth of the job's when it diverged in round 1 (far too large: a tenth, e.g.
    on diabetes' raw targets, diverged again a round later), a tenth after that."""
    lr = float(config.training.lr or 0.01)
    default = prepared.example.defaults.get("lr")
    if default is not None and lr > float(default):
        return float(default)
    return lr / 100 if round == 1 else lr / 10


def dp_history(
    silo: str, history: list[RoundRecord], current: dict[str, float] | None = None
) -> list[tuple[float, float, float]]:
    """The silo's DP-SGD steps as ``(noise, sample rate, steps)``, one entry per round it
    trained in (rejected rounds included: its data was used all the same)."""
    rounds = [r.silo_metrics[silo] for r in history if silo in r.silo_metrics]
    if current is not None:
        rounds.append(current)
    from fl_jobs.core.silo_metrics import METRIC_NOISE_KEY

    steps = [
        (m.get("dp_noise_multiplier", 0.0), m.get("dp_sample_rate", 1.0), m.get("dp_steps", 0.0))
        for m in rounds
    ]  # and a noised metric release (--silo-metrics dp): one Gaussian step, sampling rate 1
    return steps + [(m[METRIC_NOISE_KEY], 1.0, 1.0) for m in rounds if METRIC_NOISE_KEY in m]
