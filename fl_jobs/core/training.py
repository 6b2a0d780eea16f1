"""Local training on one silo's data: the only code that ever touches a silo's samples.

Same function in the local federation's workers and in the Azure ML train step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from fl_jobs.core.local_sgd import PlainSGD
from fl_jobs.core.privacy import train_private
from fl_jobs.core.silo_data import SiloArrays
from fl_jobs.core.silo_hook import GradientTerm
from fl_jobs.core.train_params import TrainParams
from fl_jobs.errors import TrainingDivergedError

if TYPE_CHECKING:
    from fl_jobs.examples.base import Example


@dataclass
class LocalUpdate:
    """What leaves a silo: updated weights, the sample count and training metrics."""

    weights: dict[str, torch.Tensor]
    n_samples: int
    metrics: dict[str, float] = field(default_factory=dict)
    #: Which silo sent it (for screening and logs); None where it does not matter.
    silo: str | None = None


def state_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's state (parameters and buffers)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _cpu_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trained weights on the CPU, where updates are written and aggregated."""
    weights = state_weights(model)
    if any(v.device.type != "cpu" for v in weights.values()):
        weights = {k: v.cpu() for k, v in weights.items()}
        model.to("cpu")
    return weights


def example_of(data: SiloArrays) -> Example:
    """The example a silo folder was written for (``meta["example"]``), for its task."""
    from fl_jobs.errors import SiloDataError
    from fl_jobs.examples.registry import get_example

    name = data.meta.get("example")
    if not isinstance(name, str):
        raise SiloDataError("silo metadata lacks 'example'; pass example= explicitly")
    return get_example(name).specialize(data.task)  # type: ignore[arg-type]


def tensors(data: SiloArrays) -> tuple[torch.Tensor, torch.Tensor]:
    """The silo's arrays as tensors with the dtypes the loss expects."""
    X = torch.from_numpy(np.ascontiguousarray(data.X, dtype=np.float32))
    dtype = np.int64 if data.task == "classification" else np.float32
    y = torch.from_numpy(np.ascontiguousarray(data.y, dtype=dtype))
    return X, y


def train_local(
    model: nn.Module,
    data: SiloArrays,
    params: TrainParams,
    *,
    seed: int,
    example: Example | None = None,
    private_seeds: tuple[int, int] | None = None,
    terms: Sequence[GradientTerm] = (),
) -> LocalUpdate:
    """Run ``params.epochs`` epochs of minibatch SGD on ``data``; deterministic given ``seed``.

    The model is trained in place; the returned weights are a copy. ``example`` (its loss)
    defaults to the one named in the silo's metadata. With DP-SGD, ``private_seeds``
    (sampling, noise) are the silo's own (:func:`fl_jobs.silo.silo_secret.private_seeds`); without
    them both derive from ``seed``, which whoever chose ``seed`` can replay. ``terms`` are
    the strategy's additions to the gradient (:mod:`fl_jobs.core.silo_hook`).
    """
    if example is None:
        example = example_of(data)
    X, y = tensors(data)
    if params.device != "cpu":  # the CPU path stays exactly as it was (bit-identical)
        model.to(params.device)
        X, y = X.to(params.device), y.to(params.device)
    if params.clip_norm is not None:
        metrics = train_private(
            model,
            X,
            y,
            params,
            seeds=private_seeds or (seed, seed ^ 0x5EED),
            example=example,
            terms=terms,
        )
        return LocalUpdate(weights=_cpu_weights(model), n_samples=len(X), metrics=metrics)
    generator = torch.Generator().manual_seed(seed)
    optimizer = PlainSGD(
        model.parameters(),
        lr=params.lr,
        momentum=params.momentum,
        weight_decay=params.weight_decay,
        terms=terms,
    )
    model.train()
    total, count, step = 0.0, 0, 0
    n = len(X)
    for _ in range(params.epochs):
        order = torch.randperm(n, generator=generator)
        for start, stop in batch_bounds(n, params.batch_size, example.merge_short_last_batch):
            batch = order[start:stop]
            optimizer.zero_grad()
            loss = example.loss_fn(model(X[batch]), y[batch])
            value = float(loss.detach())
            step += 1
            check_finite_loss(value, step)
            loss.backward()
            optimizer.step()
            total += value * len(batch)
            count += len(batch)
    return LocalUpdate(
        weights=_cpu_weights(model),
        n_samples=n,
        metrics={"train_loss": total / max(count, 1)},
    )


def batch_bounds(n: int, batch_size: int, merge_short_last: bool) -> list[tuple[int, int]]:
    """(start, stop) of each minibatch of an epoch over ``n`` shuffled rows. With
    ``merge_short_last``, a last batch of fewer than half ``batch_size`` rows joins the one
    before it: a step on a handful of rows at the full learning rate can throw a regression
    model off at the end of an epoch (turbofan's pooled 17,731 windows end with 3)."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if merge_short_last and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < batch_size / 2:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


def check_finite_loss(value: float, step: int) -> None:
    """Stop at the first non-finite loss: every later step would only spread NaN."""
    if not math.isfinite(value):
        raise TrainingDivergedError(value, step)
