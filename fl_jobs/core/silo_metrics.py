"""Which of a silo's training metrics leave it (``--silo-metrics clear|dp|none``).

The running train loss is computed from the silo's raw data without noise and with
unbounded sensitivity: with DP-SGD it would void the guarantee, and with secure aggregation
it is a per-silo value the masked sum promises to hide. So it stays in the silo (``none``)
unless the job asks for ``clear`` (the default only when neither is on) or ``dp``
(``JobConfig.silo_metrics_policy``).

``dp`` (needs DP-SGD, ``--clip-norm``) releases instead a noised train loss: after the
round's training, each example's loss on the trained model, clipped to ``[0, LOSS_BOUND]``,
averaged over the silo's n examples. Replacing one example moves that mean by at most
``LOSS_BOUND / n`` (n is public, replace-one adjacency), and the silo adds Gaussian noise
of standard deviation ``METRIC_NOISE_MULTIPLIER * LOSS_BOUND / n`` drawn from its own secret.
That is one more Gaussian mechanism (sampling rate 1, one step) in the silo's RDP history:
it goes into the silo's ledger with the round's DP-SGD steps and into its epsilon
(``dp_metric_noise_multiplier`` tells the accountant). What the DP accounting needs
(``dp_*``: noise, sampling rate, steps, delta) always goes: it depends only on n.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from fl_jobs.examples.base import Example

#: Each example's loss is clipped to [0, LOSS_BOUND] before averaging (its sensitivity).
LOSS_BOUND = 10.0
#: Noise standard deviation of the released loss, in units of its sensitivity: at 10 a
#: release costs little beside DP-SGD (docs/fl-jobs.md, "Per-silo metrics").
METRIC_NOISE_MULTIPLIER = 10.0
#: The metric that tells the accountant a noised metric was released this round.
METRIC_NOISE_KEY = "dp_metric_noise_multiplier"


def released(metrics: Mapping[str, float], policy: str) -> dict[str, float]:
    """The metrics a silo sends under ``policy`` (under ``dp``, ``metrics`` already holds
    the noised loss from :func:`noised_loss`)."""
    if policy == "clear":
        return dict(metrics)
    kept = {k: v for k, v in metrics.items() if k.startswith("dp_")}
    if policy == "dp" and METRIC_NOISE_KEY in metrics:
        kept["train_loss"] = metrics["dp_train_loss"]
        del kept["dp_train_loss"]
    return kept


def metric_release(delta: float) -> dict[str, Any]:
    """The ledger entry of one noised-metric release (a Gaussian mechanism, one step)."""
    return {
        "mechanism": "silo-metric",
        "noise_multiplier": METRIC_NOISE_MULTIPLIER,
        "sample_rate": 1.0,
        "steps": 1,
        "delta": delta,
    }


def noised_loss(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, example: Example, seed: int
) -> dict[str, float]:
    """``dp_train_loss`` (the clipped mean loss plus its Gaussian noise, see the module
    docstring) and ``dp_metric_noise_multiplier``; ``seed`` is the silo's own."""
    import torch

    device = next(model.parameters()).device
    X, y = X.to(device), y.to(device)
    model.eval()
    with torch.no_grad():
        losses = torch.cat(
            [
                example.loss_fn(model(X[i : i + 1024]), y[i : i + 1024], reduction="none")
                for i in range(0, len(X), 1024)
            ]
        )
    mean = float(losses.clamp(0.0, LOSS_BOUND).mean())
    std = METRIC_NOISE_MULTIPLIER * LOSS_BOUND / len(X)
    noise = float(torch.randn(1, generator=torch.Generator().manual_seed(seed))) * std
    return {"dp_train_loss": mean + noise, METRIC_NOISE_KEY: METRIC_NOISE_MULTIPLIER}
