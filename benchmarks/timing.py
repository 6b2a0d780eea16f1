"""Timing and memory of one in-process call, repeated: the best time and the largest peak.

Before each repetition the garbage collector runs and glibc is asked to hand freed heap pages
back to the OS (``malloc_trim``), so memory freed by an earlier contender is not silently
reused and hidden from the next one's peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from benchmarks.memory import peak_extra_memory

T = TypeVar("T")

_libc_name = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_libc_name) if _libc_name else None


def release_freed_memory() -> None:
    """Collect garbage and return freed heap memory to the OS where the C library allows it."""
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


@dataclass(frozen=True)
class Measurement(Generic[T]):
    """Best and median seconds over the repetitions, the largest peak extra memory."""

    best_s: float
    median_s: float
    peak_extra_bytes: int
    memory_method: str
    result: T


def measure(call: Callable[[], T], repeats: int) -> Measurement[T]:
    """Run ``call`` ``repeats`` times; keep the last result (callers check it is right)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times: list[float] = []
    peak = 0
    method = ""
    result: T | None = None
    for _ in range(repeats):
        result = None
        release_freed_memory()
        with peak_extra_memory() as memory:
            start = time.perf_counter()
            result = call()
            times.append(time.perf_counter() - start)
        peak = max(peak, memory.extra_bytes)
        method = memory.method
    assert result is not None
    return Measurement(min(times), statistics.median(times), peak, method, result)
