"""Everything checked and computed before any work starts: data loaded, silos partitioned.

The CLI calls :func:`prepare_job` before creating any output, so a bad argument (missing
data, a target column that does not exist, more silos than samples) stops the job with one
clear line and nothing half-done on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fl_jobs.config import JobConfig
from fl_jobs.core.partition import (
    PartitionSpec,
    parse_partition,
    partition_groups,
    partition_indices,
)
from fl_jobs.errors import DataError
from fl_jobs.examples.base import Dataset, Example
from fl_jobs.examples.registry import get_example

#: The fewest training samples a silo may hold. Below this a silo's update is mostly noise, its
#: own standardisation statistics mean little and its local-only baseline says nothing; a job
#: that would leave a silo smaller is refused with the numbers.
MIN_SAMPLES_PER_SILO = 10


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
    from fl_jobs.core.device import resolve_device

    resolve_device(
        config.training.device
    )  # --device cuda without a GPU stops here, before any output
    example = get_example(config.example.name)
    dataset = example.load(config.example, config.federation.seed)
    example = example.specialize(dataset.task)
    if (
        config.example.max_train_samples is not None
        and config.example.max_train_samples > dataset.n_train
    ):
        raise DataError(
            f"max_train_samples {config.example.max_train_samples} is more than the "
            f"{dataset.n_train} "
            f"training samples of {config.example.name} - drop it to train on all of them, or pass "
            f"at most {dataset.n_train}"
        )
    if (
        config.example.max_train_samples is not None
        and config.example.max_train_samples < dataset.n_train
    ):
        keep = np.sort(
            np.random.default_rng(config.federation.seed).choice(
                dataset.n_train, size=config.example.max_train_samples, replace=False
            )
        )
        dataset.X, dataset.y = dataset.X[keep], dataset.y[keep]
        if dataset.groups is not None:
            dataset.groups = dataset.groups[keep]
    check_silo_count(config, dataset.n_train)
    spec = parse_partition(config.federation.partition)
    if dataset.groups is not None:
        parts = partition_groups(
            dataset.groups, config.federation.silos, spec, config.federation.seed
        )
    else:
        if spec.scheme in ("dirichlet", "shards") and dataset.task != "classification":
            raise DataError(
                f"partition {spec} skews class labels but {config.example.name} is a regression "
                "task; use iid or quantity:ALPHA"
            )
        parts = partition_indices(dataset.y, config.federation.silos, spec, config.federation.seed)
    check_silo_sizes(parts, spec, config.federation.seed)
    if config.privacy.clip_norm is not None and config.privacy.target_delta is not None:
        check_privacy_delta(config.privacy.target_delta, parts)
    if config.privacy.target_epsilon is not None:
        check_privacy_target(config, parts)
    if config.secure_aggregation.enabled:
        check_secure_capacity(config, [len(p) for p in parts])
    return PreparedJob(config=config, example=example, dataset=dataset, partitions=parts)


def check_privacy_delta(delta: float, parts: list[np.ndarray]) -> None:
    """``delta < 1/n`` for every silo (the largest is the one to check); each silo checks
    its own again before it trains. Raises DataError naming it."""
    from fl_jobs.core.privacy import silo_delta

    largest = max(range(len(parts)), key=lambda i: len(parts[i]))
    try:
        silo_delta(delta, len(parts[largest]))
    except DataError as exc:
        raise DataError(f"{silo_names(len(parts))[largest]}: {exc.what}", exc.fix) from None


def check_privacy_target(config: JobConfig, parts: list[np.ndarray]) -> None:
    """Every silo can meet ``target_epsilon``: the smallest silo needs the most noise (its
    sampling rate is the highest for the same number of passes), so it is the one computed
    here; each silo computes its own noise when it trains. Raises DataError naming it."""
    from fl_jobs.core.privacy import silo_noise
    from fl_jobs.rounds.job_parts import train_params_from_config

    smallest = min(range(len(parts)), key=lambda i: len(parts[i]))
    try:
        silo_noise(train_params_from_config(config), len(parts[smallest]))
    except DataError as exc:
        raise DataError(f"{silo_names(len(parts))[smallest]}: {exc.what}", exc.fix) from None


def check_secure_capacity(config: JobConfig, sizes: list[int]) -> None:
    """The masked sum must fit its ring for these silos: checked here, as bad input (exit 2,
    nothing written), not as a failure of the first round. Names the option to change."""
    from fl_jobs.errors import JobConfigError, SecureAggregationError
    from fl_jobs.secure_aggregation import FixedPointCodec

    codec = FixedPointCodec(clip=config.secure_aggregation.clip)
    try:
        codec.check_capacity(len(sizes), max(sizes))
    except SecureAggregationError as exc:
        ring = 2**63 - len(sizes)
        largest = ring / (len(sizes) * max(sizes) * codec.scale)
        raise JobConfigError(
            f"--secure-aggregation-clip {config.secure_aggregation.clip:g} is too large: "
            f"{exc.what}",
            f"use --secure-aggregation-clip {largest:.3g} or less (the default is 256)",
        ) from None


def check_silo_count(config: JobConfig, n_train: int) -> None:
    """Enough training samples for ``MIN_SAMPLES_PER_SILO`` in every silo of an even split."""
    if config.federation.silos * MIN_SAMPLES_PER_SILO <= n_train:
        return
    most = n_train // MIN_SAMPLES_PER_SILO
    fix = (
        f"use --silos {most} or fewer"
        if most >= 1
        else "use a larger data set (or a larger --max-train-samples)"
    )
    raise DataError(
        f"{config.federation.silos} silos but only {n_train} training samples in "
        f"{config.example.name}: about "
        f"{n_train / config.federation.silos:.3g} per silo, and a silo needs at least "
        f"{MIN_SAMPLES_PER_SILO} - {fix}"
    )


def check_silo_sizes(parts: list[np.ndarray], spec: PartitionSpec, seed: int) -> None:
    """Every silo of the actual split holds ``MIN_SAMPLES_PER_SILO`` samples (skewed splits can
    leave one far below the average)."""
    sizes = [len(p) for p in parts]
    smallest = int(np.argmin(sizes))
    if sizes[smallest] >= MIN_SAMPLES_PER_SILO:
        return
    if spec.scheme in ("dirichlet", "quantity"):
        fix = "use fewer silos, a larger ALPHA (a more even split) or another --seed"
    else:
        fix = "use fewer silos"
    raise DataError(
        f"partition {spec} with seed {seed} leaves {silo_names(len(parts))[smallest]} with "
        f"{sizes[smallest]} training samples (silo sizes {min(sizes)} to {max(sizes)}), and a "
        f"silo needs at least {MIN_SAMPLES_PER_SILO} - {fix}"
    )
