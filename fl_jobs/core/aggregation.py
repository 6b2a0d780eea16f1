"""Streaming weighted mean of model updates: server memory is one model, however many silos.

Each update is added into float accumulators in place (``add_`` with ``alpha=weight``) as it
arrives and can be freed right after; nothing is stacked and nothing is upcast to float64.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


class StreamingWeightedMean:
    """Running ``sum(w_i * x_i) / sum(w_i)`` over dicts of tensors with the same keys/shapes.

    Floating tensors are averaged in their own dtype; non-floating tensors (counters such as
    BatchNorm's ``num_batches_tracked``) keep the value of the first update.
    """

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._keys: tuple[str, ...] | None = None
        self.count = 0
        self.total_weight = 0.0
        self._finished = False

    def add(self, weights: Mapping[str, torch.Tensor], weight: float) -> None:
        """Fold one update in, weighted by ``weight`` (e.g. its sample count)."""
        if self._finished:
            raise ValueError("this mean was finished; start a new StreamingWeightedMean")
        w = float(weight)
        if not w > 0 or w == float("inf"):
            raise ValueError(f"update weight must be a finite number > 0, got {weight!r}")
        if self._keys is None:
            self._keys = tuple(weights)
            for key, tensor in weights.items():
                if tensor.is_floating_point():
                    self._sums[key] = torch.mul(tensor.detach(), w)
                else:
                    self._sums[key] = tensor.detach().clone()
        else:
            if set(weights) != set(self._keys):
                missing = sorted(set(self._keys) - set(weights))
                extra = sorted(set(weights) - set(self._keys))
                raise ValueError(f"update keys differ: missing {missing}, unexpected {extra}")
            for key, tensor in weights.items():
                acc = self._sums[key]
                if tensor.shape != acc.shape:
                    raise ValueError(
                        f"update tensor {key!r} has shape {tuple(tensor.shape)}, "
                        f"expected {tuple(acc.shape)}"
                    )
                if acc.is_floating_point():
                    acc.add_(tensor.detach(), alpha=w)
        self.count += 1
        self.total_weight += w

    def finish(self) -> dict[str, torch.Tensor]:
        """The weighted mean, divided in place in the accumulators, which are handed over.

        The server's hot path: no second model is allocated, so aggregation peaks at one model
        of extra memory. The mean cannot take more updates afterwards.
        """
        self._require_updates()
        self._finished = True
        sums, self._sums = self._sums, {}
        for acc in sums.values():
            if acc.is_floating_point():
                acc.div_(self.total_weight)
        return sums

    def result(self) -> dict[str, torch.Tensor]:
        """The weighted mean as new tensors; the accumulators are left untouched, so more
        updates can still be added (use :meth:`finish` when the round is complete)."""
        self._require_updates()
        return {
            key: (acc / self.total_weight if acc.is_floating_point() else acc.clone())
            for key, acc in self._sums.items()
        }

    def _require_updates(self) -> None:
        if self._finished:
            raise ValueError("this mean was finished; its accumulators were handed over")
        if self._keys is None:
            raise ValueError("no updates were added; cannot average nothing")
