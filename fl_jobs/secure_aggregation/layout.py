"""The one place a model's tensors become a flat vector and back.

Masks are expanded over a flat vector, so every party must flatten the same tensors in the
same order: the layout (names, shapes, dtypes) travels with each masked update and the
orchestrator refuses one made for another model before adding it.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from fl_jobs.errors import ModelUpdateError
from fl_jobs.model_io import validate_update


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class ModelLayout:
    """Tensor names, shapes and dtypes in a fixed order; plain data, cheap to send."""

    tensors: tuple[TensorSpec, ...]

    @classmethod
    def of(cls, weights: Mapping[str, torch.Tensor]) -> ModelLayout:
        """The layout of ``weights`` (in their own key order); floating tensors only."""
        specs = []
        for name, tensor in weights.items():
            if not isinstance(tensor, torch.Tensor):
                raise ModelUpdateError(
                    f"{name!r} is a {type(tensor).__name__}, not a tensor",
                    "pass the model's state dict (name -> tensor)",
                )
            if not tensor.is_floating_point():
                raise ModelUpdateError(
                    f"secure aggregation sums floating tensors only; {name!r} is {tensor.dtype}",
                    "use a model without integer buffers (e.g. BatchNorm's num_batches_tracked)"
                    " or run without secure aggregation",
                )
            dtype = str(tensor.dtype).removeprefix("torch.")
            specs.append(TensorSpec(str(name), tuple(int(d) for d in tensor.shape), dtype))
        if not specs:
            raise ModelUpdateError("the model has no tensors", "pass the model's state dict")
        return cls(tuple(specs))

    @property
    def size(self) -> int:
        """Number of elements of the flat vector."""
        return self._offsets[-1]

    @cached_property
    def _offsets(self) -> list[int]:
        offsets = [0]
        for spec in self.tensors:
            offsets.append(offsets[-1] + spec.numel)
        return offsets

    def name_at(self, index: int) -> str:
        """The tensor holding flat element ``index``."""
        return self.tensors[bisect.bisect_right(self._offsets, index) - 1].name

    def template(self) -> dict[str, torch.Tensor]:
        """Storage-free tensors of this layout (for shape and dtype checks)."""
        return {
            s.name: torch.empty(s.shape, dtype=getattr(torch, s.dtype), device="meta")
            for s in self.tensors
        }

    def check_same(self, other: ModelLayout, source: str) -> None:
        """Raise ModelUpdateError naming the first tensor where ``other`` differs."""
        if other == self:
            return
        mine = {s.name: s for s in self.tensors}
        theirs = {s.name: s for s in other.tensors}
        fix = "every silo must mask the round's global model (same tensors, shapes, dtypes)"
        for name in mine.keys() | theirs.keys():
            a, b = mine.get(name), theirs.get(name)
            if a is None:
                raise ModelUpdateError(f"{source}: unknown tensor {name!r}", fix)
            if b is None:
                raise ModelUpdateError(f"{source}: tensor {name!r} is missing", fix)
            if a != b:
                raise ModelUpdateError(
                    f"{source}: tensor {name!r} is {b.shape} {b.dtype}, expected "
                    f"{a.shape} {a.dtype}",
                    fix,
                )
        raise ModelUpdateError(f"{source}: tensors are in another order", fix)

    def flatten(self, weights: Mapping[str, torch.Tensor], *, source: str) -> np.ndarray:
        """``weights`` (checked against this layout: keys, shapes, dtypes, finite values) as
        one float64 vector in layout order."""
        validate_update(weights, self.template(), source=source)
        out = np.empty(self.size, dtype=np.float64)
        for spec, start in zip(self.tensors, self._offsets, strict=False):
            tensor = weights[spec.name].detach().to("cpu", torch.float64).reshape(-1)
            out[start : start + spec.numel] = tensor.numpy()
        return out

    def unflatten(self, flat: np.ndarray) -> dict[str, torch.Tensor]:
        """Tensors of this layout's shapes and dtypes from a flat float64 vector."""
        if flat.shape != (self.size,):
            raise ModelUpdateError(
                f"a flat vector of {flat.shape} does not hold this model's {self.size:,} elements",
                "unflatten vectors made by this layout only",
            )
        weights: dict[str, torch.Tensor] = {}
        for spec, start in zip(self.tensors, self._offsets, strict=False):
            chunk = torch.from_numpy(flat[start : start + spec.numel])
            dtype = getattr(torch, spec.dtype)
            weights[spec.name] = chunk.to(dtype, copy=True).reshape(spec.shape)
        return weights
