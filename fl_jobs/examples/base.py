"""What an example is: a data loader, a model, a loss and a metric.

Examples import torch lazily so that the registry (used by config validation and ``--help``)
stays cheap to import.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from fl_jobs.errors import DataError
from fl_jobs.examples.settings import ExampleSettings

if TYPE_CHECKING:
    import torch
    from torch import nn

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class DataShape:
    """What a model needs to know about the data: input width and output width."""

    n_features: int
    n_outputs: int


@dataclass
class Dataset:
    """A training set to be split across silos and a test set kept by the orchestrator.

    ``groups`` (one id per training row, e.g. the engine unit) makes the partitioner keep
    each group whole inside one silo. ``test_X`` is already prepared for evaluation (the
    orchestrator is one more party preparing its own data).
    """

    X: np.ndarray
    y: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    task: Task
    shape: DataShape
    groups: np.ndarray | None = None
    #: How raw input rows become ``test_X`` (columns, one-hot layout, scaler, class labels),
    #: for the exported model (fl_jobs.model_export); None when rows are already features.
    input_layout: dict[str, Any] | None = None

    @property
    def n_train(self) -> int:
        return len(self.X)


class Example(ABC):
    """One runnable FL example. Subclasses set the class attributes and implement the rest."""

    name: ClassVar[str]
    task: ClassVar[Task]
    metric_name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    description: ClassVar[str]
    #: Local training settings used when the job config leaves them unset.
    defaults: ClassVar[dict[str, Any]]
    #: The example's own settings (the job's ``example`` section); its ``name`` is a
    #: ``Literal`` of the example's name.
    settings: ClassVar[type[ExampleSettings]]
    #: Standardise features with the statistics of each party's own data.
    standardize: ClassVar[bool] = False
    #: A last minibatch under half the batch size joins the one before (training.batch_bounds).
    merge_short_last_batch: ClassVar[bool] = False
    #: Regression targets are divided by this in the loss and predictions multiplied back.
    target_scale: ClassVar[float] = 1.0

    def specialize(self, task: Task) -> Example:
        """This example for ``task``: itself when the task is fixed (only tabular data picks
        its task from the data)."""
        if task != self.task:
            raise DataError(f"example {self.name!r} is a {self.task} task, not {task}")
        return self

    @abstractmethod
    def load(self, settings: Any, seed: int) -> Dataset:
        """Read the data (never downloads) as ``settings`` (an instance of ``self.settings``)
        say, splitting off a test set with ``seed``; raise DataError naming the files."""

    @abstractmethod
    def build_model(self, settings: Any, shape: DataShape) -> nn.Module:
        """A fresh model; deterministic under ``torch.manual_seed``."""

    def prepare(self, X: np.ndarray) -> np.ndarray:
        """A party's own preparation of its features (per-party standardisation if enabled)."""
        X = np.asarray(X, dtype=np.float32)
        if not self.standardize:
            return X
        return standardize_own(X)

    def loss_fn(
        self, outputs: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """The training loss; ``reduction="none"`` gives each example's
        (fl_jobs.core.silo_metrics)."""
        import torch.nn.functional as F

        if self.task == "classification":
            return F.cross_entropy(outputs, targets, reduction=reduction)
        return F.mse_loss(outputs.squeeze(-1), targets / self.target_scale, reduction=reduction)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Turn model outputs into predictions in the target's own units or classes."""
        if self.task == "classification":
            return outputs.argmax(dim=1)
        return outputs.squeeze(-1) * self.target_scale


def standardize_own(X: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column, from ``X``'s own statistics (constant columns
    become 0): each silo, and the orchestrator for its test set, uses only its own data."""
    mean, std = own_statistics(X)
    return ((X - mean) / std).astype(np.float32)


def own_statistics(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (float64; 1 for constant columns)."""
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    std[std < 1e-8] = 1.0
    return mean, std
