"""FL test settings: torch single-threaded, as the silo workers run (see fl_jobs.torch_threads)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fl_jobs.torch_threads import single_threaded


@pytest.fixture(autouse=True)
def _single_threaded_torch() -> Iterator[None]:
    with single_threaded():
        yield
