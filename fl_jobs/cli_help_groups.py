"""Option groups in ``fl-sandbox run --help``: forty options read better in panels (data,
training, strategy, privacy, faults, output). Applied to the command's option declarations
by name, so the command itself lists its options once; an option not named here stays under
"Options"."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

RUN_GROUPS: dict[str, tuple[str, ...]] = {
    "Data and silos": (
        "example",
        "model",
        "data",
        "target",
        "task",
        "data_dir",
        "max_train_samples",
        "test_fraction",
        "silos",
        "partition",
    ),
    "Training": ("rounds", "epochs", "batch_size", "lr", "momentum", "fraction", "seed", "device"),
    "Strategy": (
        "strategy",
        "strategy_options",
        "server_lr",
        "server_momentum",
        "async_buffer",
        "screen_norms",
        "norm_limit",
    ),
    "Privacy": (
        "secure_aggregation",
        "secure_aggregation_weights",
        "secure_aggregation_clip",
        "clip_norm",
        "noise_multiplier",
        "target_delta",
        "target_epsilon",
        "dp_level",
        "dp_silo_clip",
        "dp_silo_noise",
        "silo_metrics",
    ),
    "Faults and resuming": (
        "min_silos",
        "round_timeout",
        "collapse_rounds",
        "checkpoints",
        "resume",
    ),
    "Output and tracking": (
        "config",
        "output_dir",
        "name",
        "overwrite",
        "summary",
        "tracking",
        "tracking_uri",
        "baselines",
    ),
}


def apply_groups(command: Callable[..., Any], groups: dict[str, tuple[str, ...]]) -> None:
    """Set each named option's help panel (typer's ``rich_help_panel``)."""
    panel_of = {name: panel for panel, names in groups.items() for name in names}
    for name, parameter in inspect.signature(command).parameters.items():
        info = parameter.default
        if name in panel_of and hasattr(info, "rich_help_panel"):
            info.rich_help_panel = panel_of[name]
