"""Peak-memory measurement: exact in-process peaks, and sampled peaks of a process tree.

In-process: Linux keeps the resident-set high-water mark (VmHWM) of each process and lets the
process reset it (``echo 5 > /proc/self/clear_refs``). Resetting it just before the measured
call and reading it just after gives the exact peak of resident memory during the call, for
every allocator alike (numpy, torch, Python), with no sampling gaps. Peak *extra* memory is
that peak minus the resident set just before the call. Where the reset is not permitted, a
sampling thread (1 ms) stands in and the measurement says so.

Process trees (a CLI run, a Flower simulation with its Ray processes): the proportional set
size (PSS, shared pages split between the processes sharing them) of every process in the
tree is summed and sampled every ``interval`` seconds; its maximum is the tree's peak.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not found in {_STATUS}")


def rss_bytes() -> int:
    """The current resident set of this process."""
    return psutil.Process().memory_info().rss


def _reset_high_water_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def exact_peaks_supported() -> bool:
    """Whether this process can reset its high-water mark (Linux, /proc writable)."""
    return _STATUS.is_file() and _reset_high_water_mark()


@dataclass
class PeakMemory:
    """Filled in when a :func:`peak_extra_memory` block ends."""

    baseline_bytes: int = 0
    peak_bytes: int = 0
    method: str = ""

    @property
    def extra_bytes(self) -> int:
        return max(0, self.peak_bytes - self.baseline_bytes)


class _Sampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = rss_bytes()
        self._stop_event = threading.Event()
        self._process = psutil.Process()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, rss_bytes())


@contextmanager
def peak_extra_memory() -> Iterator[PeakMemory]:
    """Measure the peak resident memory the block adds on top of what existed before it."""
    result = PeakMemory(baseline_bytes=rss_bytes())
    if _STATUS.is_file() and _reset_high_water_mark():
        result.method = "VmHWM reset via /proc/self/clear_refs (exact)"
        yield result
        result.peak_bytes = _status_kb("VmHWM") * 1024
        return
    sampler = _Sampler(interval=0.001)
    sampler.start()
    result.method = "RSS sampled every 1 ms (may miss short peaks)"
    try:
        yield result
    finally:
        result.peak_bytes = sampler.stop()


def _tree_pss(root: psutil.Process) -> int:
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for process in processes:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


class TreePeakSampler(threading.Thread):
    """Samples the summed PSS of a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_bytes = 0
        self._root = psutil.Process(pid)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak_bytes = max(self.peak_bytes, _tree_pss(self._root))
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak_bytes
