"""The strategy interface the federation loop (local or Azure ML) drives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from fl_jobs.training import LocalUpdate

S = TypeVar("S")


class Strategy(Protocol):
    """Chooses the silos of a round and turns their updates into the next global model.

    Whatever it carries between rounds comes out of :meth:`state_dict` (tensors and plain
    values), so that a checkpoint can store it under the strategy's ``name`` and a resumed job
    continues bit-identically after :meth:`load_state_dict`.
    """

    name: str

    def state_dict(self) -> dict[str, Any]:
        """The state carried between rounds (tensors and plain values only)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        ...

    def configure_round(self, round: int, silos: Sequence[S], rng: np.random.Generator) -> list[S]:
        """The silos that train in ``round`` (1-based)."""
        ...

    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Iterable[LocalUpdate]
    ) -> dict[str, torch.Tensor]:
        """Consume ``updates`` one at a time (streaming) and return the new global weights."""
        ...
