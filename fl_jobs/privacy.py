"""Optional differentially private local training (DP-SGD, via Opacus).

Each silo clips every example's gradient to ``clip_norm`` and adds Gaussian noise with
standard deviation ``noise_multiplier * clip_norm`` to each batch's summed gradient, with
Poisson-sampled batches. What leaves the silo is then (epsilon, delta)-DP with respect to any
one of its examples; :func:`epsilon` accounts for all of a silo's steps over the whole run.
Opacus is imported only when privacy is on (it costs seconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from fl_jobs.examples.base import Example
    from fl_jobs.training import TrainParams


def train_private(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    params: TrainParams,
    *,
    seed: int,
    example: Example,
) -> dict[str, float]:
    """DP-SGD epochs on ``(X, y)``, training ``model`` in place; returns the train loss and
    what :func:`epsilon` needs (``dp_sample_rate``, ``dp_steps``)."""
    import warnings

    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    from fl_jobs.training import check_finite_loss

    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        TensorDataset(X, y), batch_size=min(params.batch_size, len(X)), generator=generator
    )
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=params.lr,
        momentum=params.momentum,
        weight_decay=params.weight_decay,
    )
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "secure RNG turned off": seeded on purpose
        engine = PrivacyEngine(accountant="rdp")
        private_model, private_opt, private_loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=float(params.noise_multiplier),
            max_grad_norm=float(params.clip_norm or 1.0),
            noise_generator=torch.Generator().manual_seed(seed ^ 0x5EED),
        )
    total, count, steps = 0.0, 0, 0
    try:
        private_model.train()
        for _ in range(params.epochs):
            for xb, yb in private_loader:
                private_opt.zero_grad(set_to_none=True)
                if len(xb) == 0:  # Poisson sampling drew nobody: nothing to learn or to hide
                    steps += 1
                    continue
                loss = example.loss_fn(private_model(xb), yb)
                check_finite_loss(float(loss.detach()), steps + 1)
                with warnings.catch_warnings():
                    # Opacus' hooks see inputs that need no gradient: expected, harmless.
                    warnings.filterwarnings("ignore", message="Full backward hook is firing")
                    loss.backward()
                private_opt.step()
                steps += 1
                total += float(loss.detach()) * len(xb)
                count += len(xb)
    finally:
        private_model._close()  # remove Opacus' hooks: the plain model goes back to the caller
    return {
        "train_loss": total / max(count, 1),
        "dp_sample_rate": float(private_loader.sample_rate),
        "dp_steps": float(steps),
    }


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon spent by ``steps`` DP-SGD steps at ``sample_rate`` (RDP accountant)."""
    from opacus.accountants import RDPAccountant

    if steps <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return float("inf")
    accountant = RDPAccountant()
    accountant.history.append((noise_multiplier, sample_rate, int(steps)))
    return float(accountant.get_epsilon(delta))


def spent_per_silo(
    silo_steps: dict[str, float], sample_rates: dict[str, float], noise: float, delta: float
) -> dict[str, float]:
    """Epsilon spent by each silo over the run (client sampling is not credited)."""
    return {
        silo: epsilon(noise, sample_rates[silo], int(steps), delta)
        for silo, steps in silo_steps.items()
    }
