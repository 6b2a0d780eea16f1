"""The ``privacy`` section: differential privacy (record-level DP-SGD or silo-level DP-FedAvg)
and what per-silo metrics may leave a silo."""

from __future__ import annotations

from typing import ClassVar, Literal

from fl_jobs.examples.strict_model import StrictModel, setting


class PrivacySettings(StrictModel):
    title: ClassVar[str] = "Privacy"

    clip_norm: float | None = setting(
        None,
        gt=0,
        help="DP-SGD: clip each example's gradient to this norm",
        default_text="(default: off)",
    )
    noise_multiplier: float | None = setting(
        None,
        ge=0,
        help="DP-SGD: noise std / clip norm, needs --clip-norm",
        default_text="(default: 1.0)",
    )
    target_delta: float | None = setting(
        None,
        gt=0,
        lt=1,
        help="DP-SGD: delta at which epsilon is reported, refused if >= 1/n for a silo of n "
        "samples",
        default_text="(default: 0.1/n per silo)",
    )
    target_epsilon: float | None = setting(
        None,
        gt=0,
        help="DP-SGD: instead of --noise-multiplier, each silo's noise is computed (Opacus' "
        "RDP accountant) so that its data is (EPSILON, --target-delta)-DP after --rounds "
        "rounds; needs --clip-norm",
        default_text="(default: off)",
    )
    dp_level: Literal["record", "silo"] = setting(
        "record",
        help="DP adjacency: record (DP-SGD per example, --clip-norm) or silo (DP-FedAvg: one "
        "whole silo, --dp-silo-clip)",
    )
    dp_silo_clip: float | None = setting(
        None,
        gt=0,
        help="Silo-level DP: clip each silo's update (delta) to this L2 norm; noise from "
        "--noise-multiplier or --target-epsilon",
        default_text="(default: off)",
    )
    dp_silo_noise: Literal["orchestrator", "distributed"] | None = setting(
        None,
        help="Silo-level DP: orchestrator (trusted aggregator adds the noise) or distributed "
        "(each silo adds its share, needs --secure-aggregation)",
        default_text="(default: orchestrator)",
    )
    silo_metrics: Literal["clear", "dp", "none"] | None = setting(
        None,
        help="Per-silo training metrics (train loss) sent to the orchestrator: clear | dp "
        "(noised, counted in epsilon; needs --clip-norm) | none",
        default_text="(default: none with DP or secure aggregation, else clear)",
    )
