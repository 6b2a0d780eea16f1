"""The silo folder format: round trip and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fl_jobs.core.silo_data import SiloArrays, read_silo_data, write_silo_data
from fl_jobs.errors import SiloDataError


def arrays() -> SiloArrays:
    rng = np.random.default_rng(0)
    return SiloArrays(
        X=rng.normal(size=(6, 3)).astype(np.float32),
        y=np.array([0, 1, 2, 0, 1, 2]),
        task="classification",
        meta={"example": "digits", "silo": "silo-0"},
    )


def test_round_trip(tmp_path: Path) -> None:
    write_silo_data(tmp_path / "s", arrays())
    back = read_silo_data(tmp_path / "s")
    assert np.array_equal(back.X, arrays().X) and np.array_equal(back.y, arrays().y)
    assert back.task == "classification" and back.meta["example"] == "digits"
    assert back.y.dtype == np.int64 and back.X.dtype == np.float32


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(SiloDataError, match="does not exist"):
        read_silo_data(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SiloDataError, match=r"lacks arrays.npz, meta.json"):
        read_silo_data(tmp_path / "empty")


def test_meta_must_match_arrays(tmp_path: Path) -> None:
    write_silo_data(tmp_path / "s", arrays())
    meta_path = tmp_path / "s" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "n_samples": 99}))
    with pytest.raises(SiloDataError, match="n_samples=99 but the arrays have 6"):
        read_silo_data(tmp_path / "s")
    meta_path.write_text(json.dumps({**meta, "format_version": 7}))
    with pytest.raises(SiloDataError, match="format_version must be 1"):
        read_silo_data(tmp_path / "s")


def test_invalid_arrays_are_refused() -> None:
    with pytest.raises(SiloDataError, match="one target per row"):
        SiloArrays(X=np.zeros((3, 2), np.float32), y=np.zeros(2), task="regression")
    with pytest.raises(SiloDataError, match="at least one sample"):
        SiloArrays(X=np.zeros((0, 2), np.float32), y=np.zeros(0), task="regression")
    with pytest.raises(SiloDataError, match="task must be"):
        SiloArrays(X=np.zeros((1, 2), np.float32), y=np.zeros(1), task="ranking")
