"""Synthetic model updates for the aggregation benchmark, identical in every environment.

Both the product side and the Flower side regenerate the same K updates from the same seed
(numpy's PCG64 streams, one per update), so that contenders in different processes aggregate
the very same numbers and their results can be compared. Import-light: numpy only.
"""

from __future__ import annotations

import numpy as np

_BIAS = 1_000


def layer_sizes(n_params: int) -> list[int]:
    """Split ``n_params`` into the tensors of an MLP-like model: three weights and a bias."""
    if n_params < 4 * _BIAS:
        raise ValueError(f"n_params must be >= {4 * _BIAS}, got {n_params}")
    body = n_params - _BIAS
    sizes = [body // 2, body // 4]
    sizes.append(body - sum(sizes))
    sizes.append(_BIAS)
    return sizes


def layer_names(n_params: int) -> list[str]:
    return [f"layer{i}" for i in range(len(layer_sizes(n_params)))]


def make_update(n_params: int, seed: int, index: int) -> list[np.ndarray]:
    """Update ``index``: float32 values uniform in [-0.5, 0.5), one array per layer."""
    rng = np.random.default_rng([seed, index])
    update = []
    for size in layer_sizes(n_params):
        values = np.empty(size, dtype=np.float32)
        rng.random(out=values, dtype=np.float32)
        values -= np.float32(0.5)
        update.append(values)
    return update


def make_updates(k: int, n_params: int, seed: int) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """K updates and their weights (sample counts between 50 and 999, as silos report)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    weights = np.random.default_rng([seed, 1_000_003]).integers(50, 1_000, size=k)
    return [make_update(n_params, seed, i) for i in range(k)], weights.astype(np.int64)


def fingerprint(model: list[np.ndarray], n: int = 4096) -> list[float]:
    """A few evenly spaced values of each layer, to compare results across processes."""
    probes: list[float] = []
    for layer in model:
        flat = np.asarray(layer).reshape(-1)
        idx = np.linspace(0, flat.size - 1, num=min(n, flat.size), dtype=np.int64)
        probes.extend(float(v) for v in flat[idx])
    return probes
