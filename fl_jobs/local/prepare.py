"""Everything checked and computed before any work starts: data loaded, silos partitioned.

The CLI calls :func:`prepare_job` before creating any output, so a bad argument (missing
data, a target column that does not exist, more silos than samples) stops the job with one
clear line and nothing half-done on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_jobs.config import JobConfig
from fl_jobs.errors import DataError
from fl_jobs.examples.base import Dataset, Example
from fl_jobs.examples.registry import get_example
from fl_jobs.partition import parse_partition, partition_groups, partition_indices


@dataclass
class PreparedJob:
    """A validated job: its example (for the data's task), data and each silo's row indices."""

    config: JobConfig
    example: Example
    dataset: Dataset
    partitions: list[np.ndarray]

    @property
    def silo_names(self) -> list[str]:
        return silo_names(len(self.partitions))

    def silo_sizes(self) -> list[int]:
        return [len(p) for p in self.partitions]


def silo_names(n: int) -> list[str]:
    """``silo-0``, ``silo-1``, ...: valid manifest silo names."""
    return [f"silo-{i}" for i in range(n)]


def prepare_job(config: JobConfig) -> PreparedJob:
    """Load and partition the data of ``config``; raise an FLJobError subclass if unusable."""
    example = get_example(config.example)
    dataset = example.load(config)
    example = example.specialize(dataset.task)
    if config.max_train_samples is not None and config.max_train_samples < dataset.n_train:
        keep = np.sort(
            np.random.default_rng(config.seed).choice(
                dataset.n_train, size=config.max_train_samples, replace=False
            )
        )
        dataset.X, dataset.y = dataset.X[keep], dataset.y[keep]
        if dataset.groups is not None:
            dataset.groups = dataset.groups[keep]
    if config.silos > dataset.n_train:
        raise DataError(
            f"{config.silos} silos but only {dataset.n_train} training samples in "
            f"{config.example}; use --silos {dataset.n_train} or fewer"
        )
    spec = parse_partition(config.partition)
    if dataset.groups is not None:
        parts = partition_groups(dataset.groups, config.silos, spec, config.seed)
    else:
        if spec.scheme in ("dirichlet", "shards") and dataset.task != "classification":
            raise DataError(
                f"partition {spec} skews class labels but {config.example} is a regression "
                "task; use iid or quantity:ALPHA"
            )
        parts = partition_indices(dataset.y, config.silos, spec, config.seed)
    return PreparedJob(config=config, example=example, dataset=dataset, partitions=parts)
