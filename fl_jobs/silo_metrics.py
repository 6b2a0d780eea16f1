"""Which of a silo's training metrics leave it (``--silo-metrics``).

The train loss is computed from the silo's raw data without noise and with unbounded
sensitivity: with DP-SGD it would void the guarantee, and with secure aggregation it is a
per-silo value the masked sum promises to hide. So it stays in the silo (policy ``none``)
unless the job asks for ``clear``, which is the default only when neither is on. What the DP
accounting needs (``dp_*``: noise, sampling rate, steps, delta) always goes: it depends only
on n, which is public under the replace-one adjacency (docs/fl-jobs.md). A ``dp`` policy
(metrics noised and counted in epsilon) is not built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fl_jobs.config import JobConfig


def silo_metrics_policy(config: JobConfig) -> str:
    """``clear`` or ``none``: the job's setting, else ``none`` with DP or secure aggregation."""
    if config.silo_metrics is not None:
        return config.silo_metrics
    dp = config.clip_norm is not None or config.dp_level == "silo"
    private = dp or config.secure_aggregation
    return "none" if private else "clear"


def released(metrics: Mapping[str, float], policy: str) -> dict[str, float]:
    """The metrics a silo sends under ``policy``."""
    if policy == "clear":
        return dict(metrics)
    return {k: v for k, v in metrics.items() if k.startswith("dp_")}
