"""What a job's settings become in each engine: its strategy object (the only place that
builds one, for the local federation, the agents and the Azure ML steps alike) and a silo's
local training settings. Above the config and the training core, which import neither."""

from __future__ import annotations

import importlib
from typing import Any

from fl_jobs.config import JobConfig
from fl_jobs.core.device import resolve_device
from fl_jobs.core.train_params import TrainParams
from fl_jobs.strategies.base import Strategy
from fl_jobs.strategies.registry import get_info


def build_strategy(config: JobConfig) -> Strategy:
    """The strategy a job runs, fresh (round 0)."""
    info = get_info(config.strategy.name)
    cls = getattr(importlib.import_module(info.module), info.cls)
    kwargs: dict[str, Any] = dict(config.strategy.options)
    if info.server_sgd:
        strategy: Strategy = cls(
            config.federation.fraction, config.server.lr, config.server.momentum, **kwargs
        )
    else:
        strategy = cls(config.federation.fraction, **kwargs)
    return strategy


def train_params_from_config(config: JobConfig) -> TrainParams:
    """The local training settings of a job (after the example's defaults were applied)."""
    return TrainParams(
        epochs=int(config.training.epochs or 1),
        batch_size=int(config.training.batch_size or 32),
        lr=float(config.training.lr or 0.01),
        momentum=float(config.training.momentum or 0.0),
        clip_norm=config.privacy.clip_norm,
        # record-level DP-SGD's noise only (silo-level DP's is fl_jobs.silo.silo_dp's)
        noise_multiplier=float(config.privacy.noise_multiplier or 0.0)
        if config.privacy.clip_norm
        else 0.0,
        target_epsilon=config.privacy.target_epsilon if config.privacy.clip_norm else None,
        target_delta=config.privacy.target_delta,
        planned_rounds=config.federation.rounds,
        device=resolve_device(config.training.device),
    )
