"""MNIST from the original IDX files, with the FedAvg paper's 2NN and CNN (McMahan et al.)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import field_validator

from fl_jobs.errors import DataError
from fl_jobs.examples.base import Dataset, DataShape, Example
from fl_jobs.examples.data_paths import fetch_command, read_bytes, resolve_data_dir
from fl_jobs.examples.data_sources import MNIST
from fl_jobs.examples.settings import FolderSettings
from fl_jobs.examples.strict_model import setting

if TYPE_CHECKING:
    from torch import nn

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def _refetch(folder: Path) -> str:
    """The fix for a damaged MNIST file."""
    return f"fetch verified copies with `{fetch_command(MNIST.name, folder)}`"


def read_idx_images(folder: Path, name: str) -> np.ndarray:
    """Images as uint8 (n, rows, cols) after checking the magic number and the size."""
    raw = read_bytes(folder, name, dataset=MNIST.name)
    if len(raw) < 16:
        raise DataError(f"{folder / name}: too short for an IDX image header - {_refetch(folder)}")
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != _IMAGES_MAGIC:
        raise DataError(
            f"{folder / name}: magic number {magic}, expected {_IMAGES_MAGIC} (not an IDX "
            f"image file) - {_refetch(folder)}"
        )
    if len(raw) != 16 + int(n) * int(rows) * int(cols):
        raise DataError(
            f"{folder / name}: header says {n} images of {rows}x{cols} but the file holds "
            f"{len(raw) - 16} bytes of pixels (truncated or corrupt download?) - "
            f"{_refetch(folder)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(int(n), int(rows), int(cols))


def read_idx_labels(folder: Path, name: str) -> np.ndarray:
    """Labels as int64 after checking the magic number and the size."""
    raw = read_bytes(folder, name, dataset=MNIST.name)
    if len(raw) < 8:
        raise DataError(f"{folder / name}: too short for an IDX label header - {_refetch(folder)}")
    magic, n = np.frombuffer(raw[:8], dtype=">u4")
    if magic != _LABELS_MAGIC:
        raise DataError(
            f"{folder / name}: magic number {magic}, expected {_LABELS_MAGIC} (not an IDX "
            f"label file) - {_refetch(folder)}"
        )
    if len(raw) != 8 + int(n):
        raise DataError(
            f"{folder / name}: header says {n} labels, file holds {len(raw) - 8} - "
            f"{_refetch(folder)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)


class MnistSettings(FolderSettings):
    """MNIST's official test set is used: no test_fraction."""

    name: Literal["mnist"] = "mnist"
    model: Literal["2nn", "cnn"] = setting(
        "2nn", help="Model variant (mnist: 2nn | cnn)", default_text="(default: 2nn for mnist)"
    )

    @field_validator("model", mode="before")
    @classmethod
    def _known_model(cls, value: object) -> object:
        if value not in typing.get_args(cls.model_fields["model"].annotation):
            raise ValueError(
                f"model {value!r} is not available for example 'mnist' - choose one of 2nn, cnn"
            )
        return value


class MnistExample(Example):
    name = "mnist"
    task = "classification"
    metric_name = "accuracy"
    higher_is_better = True
    description = "MNIST IDX files; FedAvg paper 2NN (784-200-200-10) or CNN"
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 1,
        "batch_size": 32,
        "lr": 0.05,
        "momentum": 0.9,
    }
    settings = MnistSettings

    def load(self, settings: MnistSettings, seed: int) -> Dataset:
        folder = resolve_data_dir(
            settings.data_dir, MNIST.folder, list(FILES.values()), dataset=MNIST.name
        )
        train_x = read_idx_images(folder, FILES["train_images"])
        train_y = read_idx_labels(folder, FILES["train_labels"])
        test_x = read_idx_images(folder, FILES["test_images"])
        test_y = read_idx_labels(folder, FILES["test_labels"])
        for images, labels, what in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
            if len(images) != len(labels):
                raise DataError(
                    f"{folder}: {what} images ({len(images)}) and labels ({len(labels)}) "
                    f"differ - {_refetch(folder)}"
                )
            if images.shape[1:] != (28, 28):
                raise DataError(
                    f"{folder}: {what} images are {images.shape[1:]}, not 28x28 - "
                    f"{_refetch(folder)}"
                )
        return Dataset(
            X=(train_x.reshape(len(train_x), -1) / 255.0).astype(np.float32),
            y=train_y,
            test_X=(test_x.reshape(len(test_x), -1) / 255.0).astype(np.float32),
            test_y=test_y,
            task="classification",
            shape=DataShape(n_features=784, n_outputs=10),
        )

    def build_model(self, settings: MnistSettings, shape: DataShape) -> nn.Module:
        from torch import nn

        if settings.model == "cnn":
            return nn.Sequential(
                nn.Unflatten(1, (1, 28, 28)),
                nn.Conv2d(1, 32, kernel_size=5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, kernel_size=5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(64 * 7 * 7, 512),
                nn.ReLU(),
                nn.Linear(512, shape.n_outputs),
            )
        return nn.Sequential(
            nn.Linear(shape.n_features, 200),
            nn.ReLU(),
            nn.Linear(200, 200),
            nn.ReLU(),
            nn.Linear(200, shape.n_outputs),
        )
