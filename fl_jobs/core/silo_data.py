"""On-disk layout of one silo's data folder: what a silo owns.

``arrays.npz`` (``X``, ``y``) plus ``meta.json`` (format version, task, shapes). The local
federation writes one folder per silo; the Azure ML preprocess step writes the same layout
on the silo datastore and the train step reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fl_jobs.errors import SiloDataError

FORMAT_VERSION = 1
#: How to repair a bad silo folder, closing its error messages.
_REWRITE = "rewrite the folder with fl_jobs.core.silo_data.write_silo_data (the preprocess step)"
ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"


@dataclass
class SiloArrays:
    """One silo's training data: features ``X`` (float32, 2-D) and targets ``y``."""

    X: np.ndarray
    y: np.ndarray
    task: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in ("classification", "regression"):
            raise SiloDataError(f"task must be classification or regression, not {self.task!r}")
        if self.X.ndim != 2:
            raise SiloDataError(f"X must be 2-D (samples x features), got shape {self.X.shape}")
        if self.y.ndim != 1 or len(self.y) != len(self.X):
            raise SiloDataError(
                f"y must be 1-D with one target per row of X: X {self.X.shape}, y {self.y.shape}"
            )
        if len(self.X) == 0:
            raise SiloDataError("a silo needs at least one sample")

    @property
    def n_samples(self) -> int:
        return len(self.X)


def write_silo_data(folder: Path, arrays: SiloArrays) -> None:
    """Write ``arrays`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    X = np.ascontiguousarray(arrays.X, dtype=np.float32)
    y_dtype = np.int64 if arrays.task == "classification" else np.float32
    y = np.ascontiguousarray(arrays.y, dtype=y_dtype)
    np.savez(folder / ARRAYS_FILE, X=X, y=y)
    meta = {
        "format_version": FORMAT_VERSION,
        "task": arrays.task,
        "n_samples": len(X),
        "n_features": int(X.shape[1]),
        **{k: v for k, v in arrays.meta.items() if k not in ("task", "n_samples", "n_features")},
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))


def read_silo_data(folder: Path) -> SiloArrays:
    """Read and validate a silo folder written by :func:`write_silo_data`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SiloDataError(f"silo data folder {folder} does not exist - {_REWRITE}")
    missing = [name for name in (ARRAYS_FILE, META_FILE) if not (folder / name).is_file()]
    if missing:
        raise SiloDataError(f"silo data folder {folder} lacks {', '.join(missing)} - {_REWRITE}")
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise SiloDataError(
            f"{folder / META_FILE} is not valid JSON ({exc}) - {_REWRITE}"
        ) from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise SiloDataError(
            f"{folder / META_FILE}: format_version must be {FORMAT_VERSION}, "
            f"got {meta.get('format_version') if isinstance(meta, dict) else meta!r} - "
            f"{_REWRITE}"
        )
    try:
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
            if set(npz.files) != {"X", "y"}:
                raise SiloDataError(
                    f"{folder / ARRAYS_FILE} must hold exactly X and y, found "
                    f"{sorted(npz.files)} - {_REWRITE}"
                )
            X, y = npz["X"], npz["y"]
    except (OSError, ValueError) as exc:
        raise SiloDataError(
            f"{folder / ARRAYS_FILE} is not a readable npz file ({exc}) - {_REWRITE}"
        ) from None
    if X.dtype != np.float32:
        raise SiloDataError(
            f"{folder / ARRAYS_FILE}: X must be float32, got {X.dtype} - {_REWRITE}"
        )
    finite = np.isfinite(X)
    if not finite.all():
        row, column = (int(i) for i in np.argwhere(~finite)[0])
        raise SiloDataError(
            f"{folder / ARRAYS_FILE}: X holds {int((~finite).sum())} non-finite values (NaN or "
            f"inf), the first at row {row}, column {column} - remove them from the source data "
            "and rewrite the silo folder"
        )
    for key, actual in (("n_samples", len(X)), ("n_features", X.shape[1] if X.ndim == 2 else -1)):
        if meta.get(key) != actual:
            raise SiloDataError(
                f"{folder}: meta.json says {key}={meta.get(key)} but the arrays have {actual} - "
                f"{_REWRITE}"
            )
    task = meta.get("task")
    extra = {k: v for k, v in meta.items() if k not in ("format_version", "task")}
    return SiloArrays(X=X, y=y, task=str(task), meta=extra)
