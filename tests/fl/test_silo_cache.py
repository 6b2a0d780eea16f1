"""The silo data cache: runs over the same data and partition share the bytes (hard links)
instead of writing them again; a damaged entry is rebuilt, never trusted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fl_jobs.cli.app import app
from fl_jobs.core.silo_data import ARRAYS_FILE, SiloArrays, read_silo_data
from fl_jobs.silo.silo_cache import cache_root, materialize_silo_folder


def arrays(seed: int = 0) -> SiloArrays:
    rng = np.random.default_rng(seed)
    return SiloArrays(
        X=rng.normal(size=(50, 4)).astype(np.float32),
        y=rng.integers(0, 3, size=50),
        task="classification",
        meta={"example": "digits", "silo": "silo-0"},
    )


def test_same_data_is_linked_not_written_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert materialize_silo_folder(tmp_path / "a", arrays(), cache=cache) is False
    assert materialize_silo_folder(tmp_path / "b", arrays(), cache=cache) is True
    a, b = (tmp_path / "a" / ARRAYS_FILE), (tmp_path / "b" / ARRAYS_FILE)
    assert os.path.samefile(a, b) and a.stat().st_nlink == 3  # cache entry + two runs
    assert np.array_equal(read_silo_data(tmp_path / "b").X, arrays().X)
    assert materialize_silo_folder(tmp_path / "c", arrays(seed=1), cache=cache) is False
    assert not os.path.samefile(a, tmp_path / "c" / ARRAYS_FILE)
    assert len(list(cache.iterdir())) == 2


def test_a_damaged_entry_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    materialize_silo_folder(tmp_path / "a", arrays(), cache=cache)
    # someone edits a run's silo file in place: through the hard link, the cache changes too
    with open(tmp_path / "a" / ARRAYS_FILE, "r+b") as fh:
        fh.seek(-8, os.SEEK_END)
        fh.write(b"garbage!")
    assert materialize_silo_folder(tmp_path / "b", arrays(), cache=cache) is False
    assert np.array_equal(read_silo_data(tmp_path / "b").X, arrays().X)


def test_two_runs_of_a_job_write_the_silo_data_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FL_SANDBOX_CACHE", str(tmp_path / "cache"))
    args = ["run", "--silos", "3", "--rounds", "1", "--epochs", "1", "--no-baselines"]
    for out in ("one", "two"):
        result = CliRunner().invoke(
            app, [*args, "--no-tracking", "--output-dir", str(tmp_path / out)]
        )
        assert result.exit_code == 0, result.output
    entries = list(cache_root().iterdir())
    assert len(entries) == 3  # one per silo, shared by both runs
    for silo in ("silo-0", "silo-1", "silo-2"):
        first = tmp_path / "one" / "silos" / silo / ARRAYS_FILE
        assert os.path.samefile(first, tmp_path / "two" / "silos" / silo / ARRAYS_FILE)
