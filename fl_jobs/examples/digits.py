"""scikit-learn's bundled 8x8 handwritten digits (1,797 images) with a small MLP: the demo."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from fl_jobs.errors import DataError
from fl_jobs.examples.base import Dataset, DataShape, Example
from fl_jobs.examples.settings import HeldOutSettings
from fl_jobs.examples.split import train_test_indices

if TYPE_CHECKING:
    from torch import nn


class DigitsSettings(HeldOutSettings):
    name: Literal["digits"] = "digits"


def bundled_digits_csv() -> Path:
    """scikit-learn's copy of the UCI digits, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("scikit-learn is not installed; the digits data ships with it")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"
    if not path.is_file():
        raise DataError(f"scikit-learn's digits data is missing at {path}; reinstall it")
    return path


class DigitsExample(Example):
    name = "digits"
    task = "classification"
    metric_name = "accuracy"
    higher_is_better = True
    description = "sklearn 8x8 digits (bundled, 1,797 images), MLP 64-64-10"
    defaults: ClassVar[dict[str, Any]] = {"epochs": 5, "batch_size": 16, "lr": 0.1, "momentum": 0.0}
    settings = DigitsSettings

    def load(self, settings: DigitsSettings, seed: int) -> Dataset:
        table = np.loadtxt(bundled_digits_csv(), delimiter=",", dtype=np.float32)
        if table.ndim != 2 or table.shape[1] != 65:
            raise DataError(f"{bundled_digits_csv()}: expected 65 columns (64 pixels + label)")
        X = table[:, :64] / 16.0
        y = table[:, 64].astype(np.int64)
        train, test = train_test_indices(len(y), settings.test_fraction, seed, stratify=y)
        return Dataset(
            X=X[train],
            y=y[train],
            test_X=X[test],
            test_y=y[test],
            task="classification",
            shape=DataShape(n_features=64, n_outputs=10),
        )

    def build_model(self, settings: DigitsSettings, shape: DataShape) -> nn.Module:
        from torch import nn

        return nn.Sequential(
            nn.Linear(shape.n_features, 64), nn.ReLU(), nn.Linear(64, shape.n_outputs)
        )
