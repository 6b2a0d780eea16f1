"""The one place a model's tensors become a flat ring vector and back.

Masks are expanded over a flat vector, so every party must flatten the same tensors in the
same order: the layout (names, shapes, dtypes) travels with each masked update and the
orchestrator refuses one made for another model before adding it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from fl_jobs.core.model_io import validate_update
from fl_jobs.errors import ModelUpdateError
from fl_jobs.secure_aggregation.encoding import FixedPointCodec

#: Elements converted at a time (float64 temporaries of 512 KiB).
CHUNK = 1 << 16


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

    def encode(
        self,
        weights: Mapping[str, torch.Tensor],
        n_samples: int,
        codec: FixedPointCodec,
        *,
        source: str,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``weights`` (checked against this layout: keys, shapes, dtypes, finite values)
        weighted by ``n_samples`` and encoded by ``codec`` into one uint64 vector in layout
        order; converted chunk by chunk, never as a whole float64 copy of the model. ``out``:
        a uint64 vector to write the first :attr:`size` elements of (more may follow)."""
        validate_update(weights, self.template(), source=source)
        if out is None:
            out = np.empty(self.size, dtype=np.uint64)
        for spec, start in zip(self.tensors, self._offsets, strict=False):
            flat = weights[spec.name].detach().reshape(-1)
            for a in range(0, spec.numel, CHUNK):
                b = min(a + CHUNK, spec.numel)
                values = flat[a:b].to("cpu", torch.float64, copy=True).numpy()
                what = f"{source}: tensor {spec.name!r}"
                codec.encode_into(values, n_samples, out[start + a : start + b], what)
        return out

    def decode(
        self, total: np.ndarray, total_samples: int, codec: FixedPointCodec
    ) -> dict[str, torch.Tensor]:
        """The weighted mean as tensors of this layout's shapes and dtypes, decoded from the
        ring sum ``total`` of ``total_samples`` samples chunk by chunk."""
        if total.dtype != np.uint64 or total.shape != (self.size,):
            raise ModelUpdateError(
                f"a {total.dtype} vector of shape {total.shape} is not this model's ring sum "
                f"of {self.size:,} elements",
                "decode sums of vectors encoded with this layout only",
            )
        weights: dict[str, torch.Tensor] = {}
        for spec, start in zip(self.tensors, self._offsets, strict=False):
            out = torch.empty(spec.numel, dtype=getattr(torch, spec.dtype))
            for a in range(0, spec.numel, CHUNK):
                b = min(a + CHUNK, spec.numel)
                mean = codec.decode(total[start + a : start + b], total_samples)
                out[a:b].copy_(torch.from_numpy(mean))
            weights[spec.name] = out.reshape(spec.shape)
        return weights
