"""Seeded train/test split, stratified by class when asked (numpy only: importing
scikit-learn costs about 2 s, a noticeable share of a local run)."""

from __future__ import annotations

import numpy as np


def train_test_indices(
    n: int, test_fraction: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test row indices; each class keeps about ``test_fraction`` of its rows
    in the test set (at least one row per class with two or more rows)."""
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
        n_test = min(max(1, round(test_fraction * n)), n - 1)
        return np.sort(order[n_test:]), np.sort(order[:n_test])
    train, test = [], []
    for cls in np.unique(stratify):
        idx = rng.permutation(np.flatnonzero(stratify == cls))
        n_test = min(max(1, round(test_fraction * len(idx))), len(idx) - 1) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
