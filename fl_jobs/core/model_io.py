"""Model files that cross a trust boundary: global models sent to silos, updates sent back.

An update is checked against the global model before it is aggregated: known keys only, same
shapes and dtypes, finite values, a positive sample count. Files are read with
``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fl_jobs.errors import ModelUpdateError

FORMAT = "fl-sandbox/weights/1"


def save_weights(
    path: Path, weights: Mapping[str, torch.Tensor], *, meta: Mapping[str, Any] | None = None
) -> None:
    """Write ``weights`` with JSON-like ``meta`` (e.g. ``n_samples``, ``metrics``) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "weights": {k: v.detach().contiguous() for k, v in weights.items()},
        "meta": dict(meta or {}),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelUpdateError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for bad files
        raise ModelUpdateError(f"{path} is not a readable weights file: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelUpdateError(f"{path} is not a {FORMAT} file")
    if not isinstance(payload.get("weights"), dict) or not isinstance(payload.get("meta"), dict):
        raise ModelUpdateError(f"{path}: 'weights' and 'meta' must be mappings")
    return payload


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights and meta of a file written by :func:`save_weights` (e.g. a global model)."""
    payload = _read(path)
    return payload["weights"], payload["meta"]


def validate_update(
    weights: Mapping[str, Any], template: Mapping[str, torch.Tensor], *, source: str = "update"
) -> None:
    """Raise ModelUpdateError naming the tensor and the problem if ``weights`` does not match
    ``template`` exactly (keys, shapes, dtypes) or holds non-finite values."""
    unexpected = sorted(set(weights) - set(template))
    if unexpected:
        raise ModelUpdateError(
            f"{source}: unknown tensor {unexpected[0]!r} (not in the global model)"
            + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else "")
        )
    missing = sorted(set(template) - set(weights))
    if missing:
        raise ModelUpdateError(f"{source}: tensor {missing[0]!r} is missing")
    for key, ref in template.items():
        value = weights[key]
        if not isinstance(value, torch.Tensor):
            raise ModelUpdateError(f"{source}: {key!r} is a {type(value).__name__}, not a tensor")
        if value.shape != ref.shape:
            raise ModelUpdateError(
                f"{source}: tensor {key!r} has shape {tuple(value.shape)}, expected "
                f"{tuple(ref.shape)}"
            )
        if value.dtype != ref.dtype:
            raise ModelUpdateError(
                f"{source}: tensor {key!r} has dtype {value.dtype}, expected {ref.dtype}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise ModelUpdateError(
                f"{source}: tensor {key!r} holds {bad} non-finite values (NaN or inf); the "
                "silo's training diverged (lower the learning rate)"
            )


def read_update(
    path: Path, template: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Validated weights and meta of an update file (see :func:`validate_update`)."""
    payload = _read(path)
    meta = payload["meta"]
    n = meta.get("n_samples")
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ModelUpdateError(f"{path}: n_samples must be a positive integer, got {n!r}")
    validate_update(payload["weights"], template, source=str(path))
    return payload["weights"], meta


def load_update(path: Path, template: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The validated weights of an update file (see :func:`validate_update`)."""
    return read_update(path, template)[0]
