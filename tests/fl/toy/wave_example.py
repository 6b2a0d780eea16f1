"""A toy example with a setting of its own, in one file: the regression of a sine wave with
``periods`` periods over the inputs. Registered by one line (``EXAMPLES["wave"] =
WaveExample``), it gets its job-file keys, its ``--periods`` option and its refusals from the
same machinery as the shipped examples."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from torch import nn

from fl_jobs.examples.base import Dataset, DataShape, Example
from fl_jobs.examples.settings import HeldOutSettings
from fl_jobs.examples.split import train_test_indices
from fl_jobs.examples.strict_model import setting


class WaveSettings(HeldOutSettings):
    name: Literal["wave"] = "wave"
    periods: int = setting(2, ge=1, le=10, help="Sine periods over the inputs (wave)")


class WaveExample(Example):
    name = "wave"
    task = "regression"
    metric_name = "rmse"
    higher_is_better = False
    description = "a sine wave, MLP"
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 2,
        "batch_size": 16,
        "lr": 0.05,
        "momentum": 0.0,
    }
    settings = WaveSettings

    def load(self, settings: WaveSettings, seed: int) -> Dataset:
        x = np.linspace(0, 1, 400, dtype=np.float32).reshape(-1, 1)
        y = np.sin(2 * np.pi * settings.periods * x[:, 0]).astype(np.float32)
        train, test = train_test_indices(len(x), settings.test_fraction, seed, None)
        return Dataset(
            X=x[train],
            y=y[train],
            test_X=x[test],
            test_y=y[test],
            task="regression",
            shape=DataShape(n_features=1, n_outputs=1),
        )

    def build_model(self, settings: WaveSettings, shape: DataShape) -> nn.Module:
        return nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
