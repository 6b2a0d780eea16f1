"""Which setting most likely wrecked a run (diverged or collapsed), and how to fix it.

A run can blow up through the client learning rate (``--lr``), the server's (``--server-lr``),
an adaptive strategy's ``eta`` or DP-SGD's noise. Each is compared with its usual value (the
example's ``lr``, a server rate of 1, the strategy's default ``eta``, a noise of 1); the one
furthest above it is named. Knobs of the server cannot make a silo's first round diverge, so
they are not blamed for it. When nothing is above its usual value, the client rate is named,
the knob that most often needs lowering.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fl_jobs.config import JobConfig

#: A DP noise multiplier this many times the clip norm already drowns most updates.
USUAL_NOISE = 1.0
#: Blame DP noise only well above it: noise of a few times the clip norm is normal.
NOISE_BLAME = 4.0


@dataclass(frozen=True)
class Blame:
    knob: str
    #: Above its usual value by this factor.
    factor: float
    fix: str


def lr_fix(config: JobConfig, suggested: float) -> str:
    lr = float(config.training.lr or 0.01)
    return f"lower the learning rate, e.g. --lr {suggested:g} (this run used {lr:g})"


def likely_knob(
    config: JobConfig,
    *,
    example_lr: float | None,
    suggested_lr: float,
    server_side: bool,
    silo_metrics: Iterable[Mapping[str, float]] = (),
) -> Blame:
    """The knob most likely at fault. ``server_side``: the damage may come from the
    server's step (after aggregation, or any round after the first); ``silo_metrics``: the
    silos' metrics so far (their DP noise)."""
    from fl_jobs.strategies.registry import get_info

    candidates: list[Blame] = []
    lr = float(config.training.lr or 0.01)
    usual = float(example_lr) if example_lr else lr
    candidates.append(Blame("--lr", lr / usual, lr_fix(config, suggested_lr)))
    if server_side:
        info = get_info(config.strategy.name)
        if info.server_sgd and config.server.lr > 1.0:
            candidates.append(
                Blame(
                    "--server-lr",
                    config.server.lr,
                    f"lower the server learning rate, e.g. --server-lr 1 (this run used "
                    f"{config.server.lr:g})",
                )
            )
        option = info.option("eta")
        eta = config.strategy.options.get("eta")
        if option is not None and eta is not None and float(eta) > float(option.default):
            default = float(option.default)
            candidates.append(
                Blame(
                    "eta",
                    float(eta) / default,
                    f"lower the server step, e.g. --strategy-option eta={default:g} (this run "
                    f"used {float(eta):g})",
                )
            )
    if config.privacy.clip_norm is not None:
        noises = [m["dp_noise_multiplier"] for m in silo_metrics if "dp_noise_multiplier" in m]
        noise = max(noises, default=config.privacy.noise_multiplier or 0.0)
        if noise >= NOISE_BLAME:
            fix = (
                f"raise --target-epsilon or lower --rounds (the noise was x{noise:.3g})"
                if config.privacy.target_epsilon is not None
                else f"lower --noise-multiplier (this run used {noise:g})"
            )
            fix += ", or raise --clip-norm"
            candidates.append(Blame("DP noise", noise / USUAL_NOISE, fix))
    above = [c for c in candidates if c.factor > 1.0]
    if not above:
        return candidates[0]
    return max(above, key=lambda c: c.factor)
