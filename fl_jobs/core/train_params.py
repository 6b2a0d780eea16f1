"""A silo's local training settings for one round: FedAvg's E, B and learning rate, and
DP-SGD's clipping and noise. Its own module: both plain training (fl_jobs.core.training) and
DP-SGD (fl_jobs.core.privacy) read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainParams:
    """Local training budget and optimiser settings (FedAvg's E, B and learning rate)."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    #: DP-SGD: per-example gradient norm bound; ``None`` trains without privacy.
    clip_norm: float | None = None
    #: DP-SGD: noise standard deviation as a multiple of ``clip_norm``.
    noise_multiplier: float = 0.0
    #: DP-SGD: instead of ``noise_multiplier``, the noise that spends this epsilon (at
    #: ``target_delta``) over ``planned_rounds`` rounds of this silo's training.
    target_epsilon: float | None = None
    #: ``None``: ``0.1 / n`` for a silo of n samples (:func:`fl_jobs.core.privacy.silo_delta`).
    target_delta: float | None = None
    planned_rounds: int = 1
    #: torch device of the local training, resolved on the silo (fl_jobs.core.device).
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(
                f"epochs and batch_size must be >= 1 and lr > 0, got {self.epochs}, "
                f"{self.batch_size}, {self.lr}"
            )
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0, got {self.clip_norm}")
        if self.noise_multiplier < 0 or (self.noise_multiplier > 0 and self.clip_norm is None):
            raise ValueError("noise_multiplier must be >= 0 and needs clip_norm")
        if self.target_epsilon is not None and (
            self.clip_norm is None or not self.target_epsilon > 0 or self.noise_multiplier
        ):
            raise ValueError("target_epsilon must be > 0, needs clip_norm, excludes noise")
