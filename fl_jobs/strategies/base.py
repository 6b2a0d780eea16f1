"""The strategy interface both engines drive (the local federation and the Azure ML steps).

A strategy picks the silos of a round, tells each of them how to train this round (a
:data:`SiloConfig`, e.g. FedProx's ``proximal_mu``), turns the round's stream of updates into
the next global model, and carries whatever it keeps between rounds in :meth:`state_dict`, so
that a checkpoint or the next Azure ML aggregate step can continue it bit-identically.

Two families:

* :class:`MeanStrategy` (FedAvg, FedProx, FedAdam, FedYogi, FedAdagrad): the round's
  sample-weighted mean of the updates, then a server step from it. Only the mean is needed,
  so it streams in one accumulator, and a secure-aggregation path can hand over a mean it
  computed from masked sums instead (:meth:`MeanStrategy.server_step`).
* robust strategies (median, trimmed mean, Krum): they need every silo's own update, so they
  hold the round's updates (see :mod:`fl_jobs.strategies.update_stack`) and cannot run on
  masked sums.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from fl_jobs.core.aggregation import StreamingWeightedMean
from fl_jobs.core.silo_hook import SiloHook
from fl_jobs.core.training import LocalUpdate
from fl_jobs.strategies.client_fraction import select_silos

S = TypeVar("S")

#: Per-silo, per-round training settings a strategy sends with a train request: names of
#: :data:`fl_jobs.core.training.SILO_CONFIG_KEYS` mapped to numbers (e.g.
#: ``{"proximal_mu": 0.01}``).
SiloConfig = dict[str, float]


@dataclass
class WeightedMean:
    """The round's sample-weighted mean of the updates: what a mean strategy's server step
    needs, whether it was streamed from plain updates or recovered from masked sums."""

    weights: dict[str, torch.Tensor]
    total_weight: float
    count: int


class Strategy:
    """Base of every strategy: client-fraction selection, no per-silo settings, no state.

    Subclasses set ``name`` (the registry's key), ``title`` (for tables and plots) and
    ``robust``, and implement :meth:`aggregate`.
    """

    name: ClassVar[str]
    #: How tables and plots name it (an instance may refine it, e.g. Multi-Krum).
    title: str
    #: Needs each silo's own update (cannot run on masked sums; screens norms by default).
    robust: ClassVar[bool] = False

    def __init__(self, fraction: float = 1.0) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def configure_round(self, round: int, silos: Sequence[S], rng: np.random.Generator) -> list[S]:
        """The silos that train in ``round`` (1-based): ``max(1, round(C * K))`` of them,
        drawn without replacement from ``rng``, in their original order."""
        return select_silos(self.fraction, silos, rng)

    def silo_config(self, round: int, silo: str) -> SiloConfig:
        """How ``silo`` trains in ``round`` beyond the job's settings.

        A function of the round and the silo only, never of aggregated state: the Azure ML
        pipeline computes it for every round when it unrolls them.
        """
        return {}

    def silo_hook(self) -> SiloHook:
        """What runs at each silo (:mod:`fl_jobs.core.silo_hook`): by default nothing."""
        return SiloHook()

    def to_silos(
        self, round: int, global_weights: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Tensors sent to every silo with the global model for ``round`` (SCAFFOLD's
        control variate); they travel under :data:`fl_jobs.core.silo_hook.EXTRA` keys."""
        return {}

    def reply_template(self, global_weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The tensors each update must carry besides the model's (keys without the prefix,
        and their shapes and dtypes): what a silo's reply is checked against."""
        return {}

    def aggregate(
        self,
        round: int,
        global_weights: Mapping[str, torch.Tensor],
        updates: Iterable[LocalUpdate],
    ) -> dict[str, torch.Tensor]:
        """Consume ``updates`` (validated, in silo order) and return the new global weights."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """What the strategy carries from round to round, as tensors and plain values."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise ValueError(f"{self.name} keeps no state, got keys {sorted(state)}")


def weighted_mean(updates: Iterable[LocalUpdate]) -> WeightedMean:
    """The sample-weighted mean of ``updates``, streamed: one model of accumulators."""
    mean = StreamingWeightedMean()
    for update in updates:
        mean.add(update.weights, update.n_samples)
    count, total = mean.count, mean.total_weight
    return WeightedMean(mean.finish(), total, count)


class MeanStrategy(Strategy):
    """A strategy whose aggregation is the weighted mean followed by a server step.

    :meth:`aggregate` streams the plain updates into the mean; a secure-aggregation path that
    recovers the same mean from masked fixed-point sums calls :meth:`server_step` directly.
    """

    def aggregate(
        self,
        round: int,
        global_weights: Mapping[str, torch.Tensor],
        updates: Iterable[LocalUpdate],
    ) -> dict[str, torch.Tensor]:
        return self.server_step(round, global_weights, weighted_mean(updates))

    def server_step(
        self, round: int, global_weights: Mapping[str, torch.Tensor], mean: WeightedMean
    ) -> dict[str, torch.Tensor]:
        """The new global weights from the previous ones and the round's weighted mean."""
        raise NotImplementedError


def check_tensor_state(
    strategy: str, state: Mapping[str, Any], keys: Sequence[str]
) -> dict[str, dict[str, torch.Tensor]]:
    """Each of ``keys`` in ``state`` as a mapping of tensor names to tensors (empty if absent),
    or ValueError naming what is wrong."""
    unknown = sorted(set(state) - set(keys))
    if unknown:
        raise ValueError(f"{strategy} state: unknown keys {unknown}")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key in keys:
        value = state.get(key, {})
        if not isinstance(value, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in value.values()
        ):
            raise ValueError(f"{strategy} state: {key!r} must map tensor names to tensors")
        out[key] = {str(k): v.clone() for k, v in value.items()}
    return out
