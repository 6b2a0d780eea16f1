"""Evaluating a model on a held-out set: the example's metric and its loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from fl_jobs.examples.base import Example


@torch.no_grad()
def evaluate(
    model: nn.Module, X: np.ndarray, y: np.ndarray, example: Example, *, batch_size: int = 4096
) -> dict[str, float]:
    """``{metric_name: value, "loss": value}`` over ``(X, y)``; rmse in the target's units."""
    model.eval()
    X_t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    y_dtype = torch.int64 if example.task == "classification" else torch.float32
    y_t = torch.as_tensor(y, dtype=y_dtype)
    loss_sum, correct, sq_err = 0.0, 0.0, 0.0
    for start in range(0, len(X_t), batch_size):
        xb, yb = X_t[start : start + batch_size], y_t[start : start + batch_size]
        out = model(xb)
        loss_sum += float(example.loss_fn(out, yb)) * len(xb)
        pred = example.predict(out)
        if example.task == "classification":
            correct += float((pred == yb).sum())
        else:
            sq_err += float(((pred - yb) ** 2).sum())
    n = max(len(X_t), 1)
    value = correct / n if example.task == "classification" else (sq_err / n) ** 0.5
    return {example.metric_name: value, "loss": loss_sum / n}
