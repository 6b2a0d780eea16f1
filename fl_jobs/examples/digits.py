"""scikit-learn's bundled 8x8 handwritten digits (1,797 images) with a small MLP: the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fl_jobs.examples.base import DataShape, Dataset, Example

if TYPE_CHECKING:
    from torch import nn

    from fl_jobs.config import JobConfig


class DigitsExample(Example):
    name = "digits"
    task = "classification"
    metric_name = "accuracy"
    higher_is_better = True
    description = "sklearn 8x8 digits (bundled, 1,797 images), MLP 64-64-10"
    defaults: ClassVar[dict[str, Any]] = {"epochs": 2, "batch_size": 16, "lr": 0.05}

    def load(self, config: JobConfig) -> Dataset:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        X = (bunch.data / 16.0).astype(np.float32)
        y = bunch.target.astype(np.int64)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=config.test_fraction, random_state=config.seed, stratify=y
        )
        return Dataset(
            X=X_train,
            y=y_train,
            test_X=X_test,
            test_y=y_test,
            task="classification",
            shape=DataShape(n_features=64, n_outputs=10),
        )

    def build_model(self, config: JobConfig, shape: DataShape) -> nn.Module:
        from torch import nn

        return nn.Sequential(
            nn.Linear(shape.n_features, 64), nn.ReLU(), nn.Linear(64, shape.n_outputs)
        )
