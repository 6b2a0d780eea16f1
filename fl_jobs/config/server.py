"""The ``server`` section: the orchestrator's step on the aggregate (FedAvgM's server learning
rate and momentum) and its screening of outlying updates."""

from __future__ import annotations

from typing import ClassVar

from fl_jobs.examples.strict_model import StrictModel, setting
from fl_jobs.strategies.registry import ROBUST


class ServerSettings(StrictModel):
    title: ClassVar[str] = "Strategy"

    lr: float = setting(1.0, gt=0, key="server_lr", help="Server learning rate")
    momentum: float = setting(
        0.0, ge=0, lt=1, key="server_momentum", help="Server momentum in [0, 1) (FedAvgM)"
    )
    screen_norms: bool | None = setting(
        None,
        help="Reject updates whose distance from the global model is more than --norm-limit "
        "times the round's median",
        default_text=f"(default: on for {', '.join(ROBUST)}, off otherwise)",
    )
    norm_limit: float = setting(
        10.0, gt=1, help="Norm screening: reject above this many times the median"
    )
