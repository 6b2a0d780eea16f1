"""Run a command as a fresh process and measure it from outside: wall time and peak memory.

End-to-end figures include interpreter start-up and imports, because a user pays for them too.
Peak memory is the summed PSS of the process tree (see ``memory.TreePeakSampler``).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.memory import TreePeakSampler


@dataclass(frozen=True)
class MeasuredRun:
    """What a measured command did and cost."""

    command: list[str]
    returncode: int
    wall_s: float
    peak_tree_bytes: int
    stdout: str
    stderr: str

    def check(self) -> MeasuredRun:
        """Raise with the command's own error output when it failed."""
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-25:])
            raise RuntimeError(
                f"command failed with exit code {self.returncode}: {' '.join(self.command)}\n{tail}"
            )
        return self


def run_measured(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 1800,
    sample_interval_s: float = 0.05,
) -> MeasuredRun:
    """Start ``command``, sample its process tree's memory until it exits, time it."""
    start = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = TreePeakSampler(process.pid, interval=sample_interval_s)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        stderr += f"\n(killed after {timeout_s:.0f} s)"
    wall = time.perf_counter() - start
    peak = sampler.stop()
    return MeasuredRun(
        command=list(command),
        returncode=process.returncode,
        wall_s=wall,
        peak_tree_bytes=peak,
        stdout=stdout,
        stderr=stderr,
    )
