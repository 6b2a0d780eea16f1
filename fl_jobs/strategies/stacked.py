"""Holding a round's updates for the robust strategies (median, trimmed mean, Krum).

A robust aggregate depends on every silo's own update, so it cannot be streamed into one
accumulator: :class:`UpdateStack` holds the round's K updates, each flattened into one
contiguous vector as it arrives (the update's own tensors can be freed at once). That is
K models of memory, the least an exact coordinate-wise median or a pairwise-distance rule
needs. Coordinate-wise rules then work on column slices of at most :data:`CHUNK_BYTES` of
stacked values, so their temporaries (sorting included) stay a few times that, whatever the
model size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch

from fl_jobs.core.training import LocalUpdate
from fl_jobs.strategies.base import Strategy

#: Stacked values per column slice (K rows x slice width x item size).
CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class _Slot:
    key: str
    shape: torch.Size
    dtype: torch.dtype
    start: int
    stop: int


class UpdateStack:
    """The round's updates as flat vectors (floating tensors only), with their sample counts
    and silo names; non-floating tensors (counters) keep the first update's value."""

    def __init__(self) -> None:
        self.rows: list[torch.Tensor] = []
        self.samples: list[int] = []
        self.silos: list[str] = []
        self._slots: list[_Slot] = []
        self._fixed: dict[str, torch.Tensor] = {}
        self._keys: tuple[str, ...] = ()
        self.dtype = torch.float32

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return self._slots[-1].stop if self._slots else 0

    def add(self, update: LocalUpdate) -> None:
        """Flatten ``update`` into a new row (one copy; the update is not kept)."""
        weights = update.weights
        if not self.rows:
            self._layout(weights)
        elif tuple(weights) != self._keys:
            raise ValueError("update keys differ from the round's first update")
        row = torch.empty(self.width, dtype=self.dtype)
        for slot in self._slots:
            tensor = weights[slot.key]
            if tensor.shape != slot.shape:
                raise ValueError(
                    f"update tensor {slot.key!r} has shape {tuple(tensor.shape)}, expected "
                    f"{tuple(slot.shape)}"
                )
            row[slot.start : slot.stop].copy_(tensor.detach().reshape(-1))
        self.rows.append(row)
        self.samples.append(int(update.n_samples))
        self.silos.append(update.silo or f"update-{len(self.rows)}")

    def _layout(self, weights: Mapping[str, torch.Tensor]) -> None:
        self._keys = tuple(weights)
        floating = [t.dtype for t in weights.values() if t.is_floating_point()]
        dtype = floating[0] if floating else torch.float32
        for other in floating[1:]:
            dtype = torch.promote_types(dtype, other)
        self.dtype = dtype
        offset = 0
        for key, tensor in weights.items():
            if not tensor.is_floating_point():
                self._fixed[key] = tensor.detach().clone()
                continue
            n = tensor.numel()
            self._slots.append(_Slot(key, tensor.shape, tensor.dtype, offset, offset + n))
            offset += n

    def column_chunks(self) -> Iterator[tuple[slice, torch.Tensor]]:
        """``(columns, values)`` with ``values`` of shape (K, width of the slice)."""
        if not self.rows:
            raise ValueError("no updates were added; cannot aggregate nothing")
        itemsize = torch.empty((), dtype=self.dtype).element_size()
        step = max(1024, CHUNK_BYTES // (len(self.rows) * itemsize))
        for start in range(0, self.width, step):
            columns = slice(start, min(start + step, self.width))
            yield columns, torch.stack([row[columns] for row in self.rows])

    def coordinatewise(self, rule: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``rule`` applied to every column slice (K x n -> n), as one flat vector."""
        out = torch.empty(self.width, dtype=self.dtype)
        for columns, values in self.column_chunks():
            out[columns] = rule(values)
        return out

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Model weights (every key, in order, each in its own dtype) from one flat vector."""
        by_key = {
            slot.key: flat[slot.start : slot.stop].reshape(slot.shape).to(slot.dtype).clone()
            for slot in self._slots
        }
        return {key: by_key[key] if key in by_key else self._fixed[key] for key in self._keys}


class RobustStrategy(Strategy):
    """A strategy that holds the round's updates (:class:`UpdateStack`) and combines them
    once the round is complete; subclasses implement :meth:`combine`."""

    robust = True

    def aggregate(
        self,
        round: int,
        global_weights: Mapping[str, torch.Tensor],
        updates: Iterable[LocalUpdate],
    ) -> dict[str, torch.Tensor]:
        stack = UpdateStack()
        for update in updates:
            stack.add(update)
            self.added(stack)
        if not len(stack):
            raise ValueError("no updates were added; cannot aggregate nothing")
        return self.combine(stack)

    def added(self, stack: UpdateStack) -> None:
        """Called after each update joins ``stack`` (work that can overlap the round)."""

    def combine(self, stack: UpdateStack) -> dict[str, torch.Tensor]:
        """The new global weights from the round's complete stack."""
        raise NotImplementedError
