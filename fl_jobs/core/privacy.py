"""Optional differentially private local training (DP-SGD, via Opacus) and its accounting.

Each silo clips every example's gradient to ``clip_norm`` and adds Gaussian noise with
standard deviation ``noise_multiplier * clip_norm`` to each batch's summed gradient, with
Poisson-sampled batches. What leaves the silo is then (epsilon, delta)-DP with respect to any
one of its examples. The noise is either given (``noise_multiplier``) or computed for a target
(``target_epsilon`` at ``target_delta`` over the job's planned rounds, :func:`silo_noise`):
each silo computes it from its own sample count, so each silo's budget is the target. The
accounting is Opacus's RDP accountant; Opacus is imported only when privacy is on (it costs
seconds).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fl_jobs.core.silo_hook import GradientTerm, apply_terms

if TYPE_CHECKING:
    from fl_jobs.core.train_params import TrainParams
    from fl_jobs.examples.base import Example


def dp_schedule(n_samples: int, batch_size: int) -> tuple[float, int]:
    """``(sample_rate, steps per epoch)`` of DP-SGD on ``n_samples`` examples, as Opacus'
    Poisson loader derives them from a loader of ``min(batch_size, n)``-sized batches."""
    batches = -(-n_samples // min(batch_size, n_samples))  # len(DataLoader)
    sample_rate = 1 / batches
    return sample_rate, int(1 / sample_rate)


@functools.lru_cache(maxsize=256)
def noise_for_target(target_epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The smallest noise multiplier (to 0.01 epsilon below the target) whose ``steps``
    DP-SGD steps at ``sample_rate`` spend at most ``target_epsilon`` at ``delta`` under
    replace-one adjacency (:func:`spent`); ValueError when no noise below 1e6 does."""
    import warnings

    with warnings.catch_warnings():
        # "optimal order is the largest alpha": the search tries hopeless noises on its way
        warnings.simplefilter("ignore")
        return _search_noise(target_epsilon, delta, sample_rate, steps)


def _search_noise(target_epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    low, high = 0.0, 10.0
    while spent([(high, sample_rate, steps)], delta) > target_epsilon:
        low, high = high, high * 2
        if high > 1e6:
            raise ValueError(
                f"no noise reaches epsilon {target_epsilon:g} at delta {delta:g} in {steps} "
                f"steps at sample rate {sample_rate:.3g}"
            )
    eps = spent([(high, sample_rate, steps)], delta)
    while eps < target_epsilon - 0.01 and high - low > 1e-6:
        mid = (low + high) / 2
        at_mid = spent([(mid, sample_rate, steps)], delta)
        if at_mid > target_epsilon:
            low = mid
        else:
            high, eps = mid, at_mid
    return high


#: The adjacency every reported epsilon is for (summary.json and docs/fl-jobs.md).
ADJACENCY = "replace-one, n public"


def silo_delta(target_delta: float | None, n_samples: int) -> float:
    """The delta a silo of ``n_samples`` accounts at: ``target_delta``, refused (DataError)
    when it is ``>= 1 / n``; without one, ``0.1 / n``."""
    if target_delta is None:
        return 0.1 / n_samples
    if target_delta * n_samples >= 1:
        from fl_jobs.errors import DataError

        raise DataError(
            f"target_delta {target_delta:g} is >= 1/n for a silo of {n_samples} samples "
            "(leaking one record at random would meet it)",
            f"use --target-delta {0.1 / n_samples:.2g} or less, or leave it out (0.1/n per silo)",
        )
    return float(target_delta)


def silo_noise(params: TrainParams, n_samples: int) -> float:
    """The noise multiplier a silo of ``n_samples`` examples trains with: the given one, or
    the one that spends ``target_epsilon`` over the planned rounds (DataError if none can).

    Planned rounds, not the rounds a silo will really train in: with client sampling a silo
    trains in fewer and spends less than the target."""
    if params.target_epsilon is None:
        return float(params.noise_multiplier)
    rate, per_epoch = dp_schedule(n_samples, params.batch_size)
    steps = per_epoch * params.epochs * params.planned_rounds
    delta = silo_delta(params.target_delta, n_samples)
    try:
        return noise_for_target(params.target_epsilon, delta, rate, steps)
    except ValueError as exc:
        from fl_jobs.errors import DataError

        raise DataError(
            f"target_epsilon {params.target_epsilon:g} cannot be met by a silo of {n_samples} "
            f"samples ({exc})",
            "raise --target-epsilon or --target-delta, train fewer --rounds or --epochs, or "
            "use a larger --batch-size",
        ) from None


def skip_non_finite_records(params: list[nn.Parameter]) -> None:
    """Zero every per-record gradient (Opacus' ``grad_sample``) of a record whose gradient
    holds a non-finite value in any parameter."""
    found = (getattr(p, "grad_sample", None) for p in params)
    samples: list[torch.Tensor] = [g for g in found if isinstance(g, torch.Tensor)]
    if not samples:
        return
    bad = torch.zeros(samples[0].shape[0], dtype=torch.bool)
    for grad in samples:
        bad |= ~torch.isfinite(grad.reshape(grad.shape[0], -1)).all(dim=1)
    if bad.any():
        for grad in samples:
            grad[bad] = 0


def train_private(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    params: TrainParams,
    *,
    seeds: tuple[int, int],
    example: Example,
    terms: Sequence[GradientTerm] = (),
) -> dict[str, float]:
    """DP-SGD epochs on ``(X, y)``, training ``model`` in place; returns the train loss and
    what the accounting needs (``dp_sample_rate``, ``dp_steps``, ``dp_noise_multiplier``).

    A strategy's gradient ``terms`` (:mod:`fl_jobs.core.silo_hook`: FedProx's proximal term,
    SCAFFOLD's correction) join the gradient after clipping and noise: they do not read the
    data, so they cost no privacy. ``seeds``
    are the Poisson sampling's and the noise's (the silo's own, see fl_jobs.silo.silo_secret)."""
    import warnings

    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    delta = silo_delta(params.target_delta, len(X))  # refuses a delta >= 1/n here too
    noise = silo_noise(params, len(X))
    sampling_seed, noise_seed = seeds
    generator = torch.Generator().manual_seed(sampling_seed)
    loader = DataLoader(
        TensorDataset(X, y), batch_size=min(params.batch_size, len(X)), generator=generator
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        trainable,
        lr=params.lr,
        momentum=params.momentum,
        weight_decay=params.weight_decay,
    )
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "secure RNG turned off": seeded from the silo secret
        engine = PrivacyEngine(accountant="rdp")
        private_model, private_opt, private_loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=noise,
            max_grad_norm=float(params.clip_norm or 1.0),
            noise_generator=torch.Generator().manual_seed(noise_seed),
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
                with warnings.catch_warnings():
                    # Opacus' hooks see inputs that need no gradient: expected, harmless.
                    warnings.filterwarnings("ignore", message="Full backward hook is firing")
                    loss.backward()
                # A record whose gradient is not finite adds nothing (a zero gradient is within
                # the clip, so the noise still covers it) and the step goes on: stopping, or
                # saying so, would answer a question a crafted model asks about the records.
                skip_non_finite_records(trainable)
                if private_opt.pre_step():  # clip, add noise, average: p.grad is private now
                    if terms:
                        with torch.no_grad():
                            for i, p in enumerate(trainable):
                                if p.grad is not None:
                                    p.grad = apply_terms(terms, i, p.grad, p)
                    private_opt.original_optimizer.step()
                steps += 1
                if math.isfinite(value := float(loss.detach())):
                    total += value * len(xb)
                    count += len(xb)
    finally:
        private_model._close()  # remove Opacus' hooks: the plain model goes back to the caller
    return {
        "train_loss": total / max(count, 1),
        "dp_sample_rate": float(private_loader.sample_rate),
        "dp_steps": float(steps),
        "dp_noise_multiplier": noise,
        "dp_delta": delta,
    }


#: Opacus' RDP orders (``RDPAccountant.DEFAULT_ALPHAS``).
def _orders() -> list[float]:
    from opacus.accountants import RDPAccountant

    return list(RDPAccountant.DEFAULT_ALPHAS)


@functools.lru_cache(maxsize=1024)
def _rdp_per_step(noise_multiplier: float, sample_rate: float) -> tuple[float, ...]:
    """The RDP of one step at every order: the costly part, the same for every round."""
    from opacus.accountants.analysis.rdp import compute_rdp

    rdp = compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=_orders())
    return tuple(float(x) for x in rdp)


def add_remove_spent(history: Iterable[tuple[float, float, float]], delta: float) -> float:
    """Epsilon at ``delta`` under add/remove-one adjacency of DP-SGD steps given as
    ``(noise_multiplier, sample_rate, steps)``: what Opacus' ``RDPAccountant`` reports for
    that history (the RDP of a step is computed once per noise and rate, then scaled)."""
    rdp = _rdp(history)
    if rdp is None:
        return 0.0
    return _eps_at(rdp, delta)


def _rdp(history: Iterable[tuple[float, float, float]]) -> Any:
    import numpy as np

    totals: dict[tuple[float, float], float] = {}
    for noise, rate, steps in history:
        if steps > 0:
            key = (float(noise), float(rate))
            totals[key] = totals.get(key, 0.0) + float(steps)
    if not totals:
        return None
    if any(noise <= 0 for noise, _ in totals):
        return np.full(len(_orders()), np.inf)
    return sum(
        np.asarray(_rdp_per_step(noise, rate)) * steps for (noise, rate), steps in totals.items()
    )


def _eps_at(rdp: Any, delta: float) -> float:
    import math
    import warnings

    from opacus.accountants.analysis.rdp import get_privacy_spent

    if not all(math.isfinite(float(x)) for x in rdp):
        return float("inf")
    with warnings.catch_warnings():
        # "Optimal order is the largest alpha": the bound is looser at extreme epsilon, and
        # the epsilon reported is still a valid upper bound; not worth lines on stderr.
        warnings.filterwarnings("ignore", message="Optimal order is the")
        eps, _ = get_privacy_spent(orders=_orders(), rdp=rdp, delta=delta)
    return float(eps)


def spent(history: Iterable[tuple[float, float, float]], delta: float) -> float:
    """Epsilon at ``delta`` under replace-one adjacency (the one this project reports, see
    the module docstring) of DP-SGD steps given as ``(noise_multiplier, sample_rate,
    steps)``: ``2 e`` for the add/remove ``(e, d)`` with ``(1 + exp(e)) d <= delta`` that
    gives the smallest ``e`` (d tried on a grid of ratio 1.25 below ``delta``)."""
    import math

    rdp = _rdp(history)
    if rdp is None:
        return 0.0
    inner = delta
    for _ in range(200):  # epsilon only grows as d shrinks: the first d that fits is best
        inner /= 1.25
        eps = _eps_at(rdp, inner)
        if not math.isfinite(eps):
            return eps
        if (1 + math.exp(min(eps, 700.0))) * inner <= delta:
            return 2 * eps
    return float("inf")


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon spent by ``steps`` DP-SGD steps at ``sample_rate`` (RDP accountant)."""
    if steps <= 0:
        return 0.0
    return spent([(noise_multiplier, sample_rate, steps)], delta)
