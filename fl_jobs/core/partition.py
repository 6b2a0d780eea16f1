"""Splitting a training set across silos: IID, label skew, the FedAvg paper's shards and
quantity skew, over samples or over whole groups (e.g. engines). Deterministic given a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fl_jobs.errors import PartitionError

Scheme = Literal["iid", "dirichlet", "shards", "quantity"]

_USAGE = (
    "use one of: iid, dirichlet:ALPHA (label skew, ALPHA > 0), shards:K (K label-sorted shards "
    "per silo), quantity:ALPHA (silo sizes drawn from Dirichlet(ALPHA))"
)


@dataclass(frozen=True)
class PartitionSpec:
    """A parsed partition spec; ``param`` is ALPHA or K depending on the scheme."""

    scheme: Scheme
    param: float | None = None

    def __str__(self) -> str:
        if self.param is None:
            return self.scheme
        value = int(self.param) if self.scheme == "shards" else self.param
        return f"{self.scheme}:{value}"


def parse_partition(spec: str) -> PartitionSpec:
    """Parse ``iid``, ``dirichlet:0.5``, ``shards:2`` or ``quantity:1.0``."""
    text = spec.strip().lower()
    name, _, arg = text.partition(":")
    if name == "iid":
        if arg:
            raise PartitionError(f"partition {spec!r}: 'iid' takes no parameter - {_USAGE}")
        return PartitionSpec("iid")
    if name not in ("dirichlet", "shards", "quantity"):
        raise PartitionError(f"unknown partition {spec!r} - {_USAGE}")
    if not arg:
        raise PartitionError(f"partition {spec!r} needs a parameter - {_USAGE}")
    if name == "shards":
        try:
            k = int(arg)
        except ValueError:
            raise PartitionError(
                f"partition {spec!r}: K must be a whole number >= 1 - e.g. shards:2"
            ) from None
        if k < 1:
            raise PartitionError(f"partition {spec!r}: K must be >= 1 - e.g. shards:2")
        return PartitionSpec("shards", float(k))
    try:
        alpha = float(arg)
    except ValueError:
        raise PartitionError(
            f"partition {spec!r}: ALPHA must be a number > 0 - e.g. {name}:0.5"
        ) from None
    if not np.isfinite(alpha) or alpha <= 0:
        raise PartitionError(
            f"partition {spec!r}: ALPHA must be a finite number > 0 - e.g. {name}:0.5"
        )
    return PartitionSpec(name, alpha)  # type: ignore[arg-type]


def partition_indices(
    labels_or_groups: np.ndarray, n_silos: int, spec: PartitionSpec, seed: int
) -> list[np.ndarray]:
    """Indices of each silo's samples (sorted), deterministic given ``seed``.

    ``labels_or_groups`` holds class labels for the label-skew schemes (dirichlet, shards) and
    anything of the right length for iid/quantity. Raises :class:`PartitionError` if a silo
    would be left empty.
    """
    values = np.asarray(labels_or_groups)
    n = len(values)
    if n_silos < 1:
        raise PartitionError("the number of silos must be >= 1 - pass --silos 1 or more")
    if n < n_silos:
        raise PartitionError(
            f"{n_silos} silos but only {n} training samples - use at most {n} silos"
        )
    rng = np.random.default_rng(seed)
    if spec.scheme == "iid":
        parts = np.array_split(rng.permutation(n), n_silos)
    elif spec.scheme == "quantity":
        parts = _quantity(n, n_silos, float(spec.param or 1.0), rng)
    elif spec.scheme == "dirichlet":
        parts = _dirichlet(values, n_silos, float(spec.param or 1.0), rng)
    else:
        parts = _shards(values, n_silos, int(spec.param or 1), rng)
    result = [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    for i, part in enumerate(result):
        if len(part) == 0:
            raise PartitionError(
                f"partition {spec} left silo {i} without samples ({n} samples, {n_silos} "
                "silos) - use fewer silos, a larger ALPHA, or another seed"
            )
    return result


def _quantity(n: int, n_silos: int, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Sizes ~ Dirichlet(alpha) with at least one sample each; labels stay IID."""
    props = rng.dirichlet(np.full(n_silos, alpha))
    sizes = 1 + np.floor(props * (n - n_silos)).astype(np.int64)
    sizes[np.argmax(props)] += n - int(sizes.sum())
    cuts = np.cumsum(sizes)[:-1]
    return np.split(rng.permutation(n), cuts)


def _dirichlet(
    labels: np.ndarray, n_silos: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per class, split its samples across silos with proportions ~ Dirichlet(alpha)."""
    parts: list[list[np.ndarray]] = [[] for _ in range(n_silos)]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        props = rng.dirichlet(np.full(n_silos, alpha))
        cuts = (np.cumsum(props)[:-1] * len(idx)).astype(np.int64)
        for silo, chunk in enumerate(np.split(idx, cuts)):
            parts[silo].append(chunk)
    return [np.concatenate(p) for p in parts]


def _shards(
    labels: np.ndarray, n_silos: int, per_silo: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Sort by label, cut into ``n_silos * per_silo`` shards, deal ``per_silo`` to each silo."""
    n_shards = n_silos * per_silo
    if n_shards > len(labels):
        raise PartitionError(
            f"shards:{per_silo} with {n_silos} silos needs {n_shards} shards but there are "
            f"only {len(labels)} samples - lower K or the number of silos"
        )
    order = np.argsort(labels, kind="stable")
    shards = np.array_split(order, n_shards)
    dealt = rng.permutation(n_shards).reshape(n_silos, per_silo)
    return [np.concatenate([shards[s] for s in row]) for row in dealt]


def partition_groups(
    groups: np.ndarray, n_silos: int, spec: PartitionSpec, seed: int
) -> list[np.ndarray]:
    """Whole groups (e.g. engine units) per silo: no group is split across silos.

    The spec is applied to the list of distinct groups, so ``quantity:ALPHA`` skews how many
    groups each silo holds. Label-skew schemes need class labels and are refused.
    """
    if spec.scheme in ("dirichlet", "shards"):
        raise PartitionError(
            f"partition {spec} needs class labels, but this data is split by group (e.g. "
            "engine) - use iid or quantity:ALPHA"
        )
    unique = np.unique(groups)
    if len(unique) < n_silos:
        raise PartitionError(
            f"{n_silos} silos but only {len(unique)} groups (e.g. engines) to share - use at "
            f"most {len(unique)} silos"
        )
    group_parts = partition_indices(unique, n_silos, spec, seed)
    return [np.flatnonzero(np.isin(groups, unique[part])) for part in group_parts]
