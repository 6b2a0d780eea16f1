"""The ``secure_aggregation`` section: the orchestrator sees only the masked sum of the
updates (fl_jobs.secure_aggregation). ``secure_aggregation: true`` in a flat job file is
``enabled``."""

from __future__ import annotations

from typing import ClassVar, Literal

from fl_jobs.examples.strict_model import StrictModel, setting


class SecureAggregationSettings(StrictModel):
    title: ClassVar[str] = "Secure aggregation"

    enabled: bool = setting(
        False,
        key="secure_aggregation",
        help="The orchestrator sees only the masked sum of the updates (local runs; mean "
        "strategies only, not with --screen-norms)",
        default_text="(default: off)",
    )
    weights: Literal["samples", "equal"] = setting(
        "samples",
        key="secure_aggregation_weights",
        help="Secure aggregation: samples (weight by each silo's masked sample count; the "
        "round's total is revealed, and rounds with different cohorts give counts away by "
        "difference) | equal (every silo weighs the same; no count leaves a silo)",
    )
    clip: float = setting(
        256.0,
        gt=0,
        key="secure_aggregation_clip",
        help="Secure aggregation: silos refuse to send a weight beyond +/- this",
    )
