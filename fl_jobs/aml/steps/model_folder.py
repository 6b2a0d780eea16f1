"""Global model folders: building the model an example needs and moving weights in and out.

The global model's meta records what is needed to rebuild its module anywhere (example, task,
input and output width), so silos never derive the architecture from their own data (a silo
may not have seen every class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fl_jobs.aml.steps.common import MODEL_FILE, example_for
from fl_jobs.config import JobConfig
from fl_jobs.core.silo_data import SiloArrays
from fl_jobs.errors import ModelUpdateError, SiloDataError
from fl_jobs.examples.base import DataShape


def model_meta(config: JobConfig, task: str, shape: DataShape, round_index: int) -> dict[str, Any]:
    return {
        "example": config.example.name,
        "task": task,
        "n_features": shape.n_features,
        "n_outputs": shape.n_outputs,
        "round": round_index,
    }


def read_global(folder: Path, config: JobConfig) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights and meta of a global model folder, checked against the job's example."""
    from fl_jobs.core.model_io import load_weights

    weights, meta = load_weights(folder / MODEL_FILE)
    if meta.get("example") != config.example.name:
        raise ModelUpdateError(
            f"{folder / MODEL_FILE} holds a model of example {meta.get('example')!r}, but the "
            f"job runs {config.example.name!r}"
        )
    for key in ("task", "n_features", "n_outputs", "round"):
        if key not in meta:
            raise ModelUpdateError(f"{folder / MODEL_FILE}: meta lacks {key!r}")
    return weights, meta


def module_for(
    config: JobConfig, meta: dict[str, Any], weights: dict[str, torch.Tensor]
) -> nn.Module:
    """The example's module with ``weights`` loaded (shape from the global model's meta)."""
    example = example_for(config, meta["task"])
    model = example.build_model(
        config.example, DataShape(int(meta["n_features"]), int(meta["n_outputs"]))
    )
    model.load_state_dict(weights)
    return model


def shape_of(data: SiloArrays, folder: Path) -> DataShape:
    """Input/output width recorded in a prepared data folder's meta (``n_outputs``)."""
    n_outputs = data.meta.get("n_outputs")
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 1:
        raise SiloDataError(
            f"{folder}: meta.json lacks a positive integer 'n_outputs'; write the folder with "
            "scripts/prepare_silo_data.py"
        )
    return DataShape(n_features=int(data.X.shape[1]), n_outputs=n_outputs)
