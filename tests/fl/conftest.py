"""FL test settings: torch single-threaded, as the silo workers run (see
fl_jobs.core.torch_threads); in-process jobs log to a store of their own, not to the shared
``runs/mlflow.db`` of whatever folder pytest runs in (jobs run as processes start in the
test's folder instead)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fl_jobs.core.torch_threads import single_threaded


@pytest.fixture(autouse=True)
def _single_threaded_torch() -> Iterator[None]:
    with single_threaded():
        yield


@pytest.fixture(autouse=True)
def _own_mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'test-mlflow.db'}")


@pytest.fixture(autouse=True)
def _own_silo_stores(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Each test's silos start with empty stores (secret, secure-aggregation memory): a
    silo rightly refuses to unmask the same update over two survivor sets, and tests of
    different dropouts retrain the same updates."""
    monkeypatch.setenv("FL_SANDBOX_SILO_STORE", str(tmp_path_factory.mktemp("silo-store")))
    yield
