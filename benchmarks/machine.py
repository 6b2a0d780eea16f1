"""What a benchmark ran on: cores, memory, CPU model, Python, library versions, load at start.

Figures from a shared machine only mean something next to its load, so the load average at the
start of each run is recorded with the rest.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict

# Distributions whose versions a reader needs to compare figures across machines.
PRODUCT_LIBRARIES = ("torch", "numpy", "pulumi", "pulumi-azure-native", "azure-ai-ml", "mlflow")


class MachineInfo(BaseModel):
    """The machine and software a report was measured on."""

    model_config = ConfigDict(extra="forbid")

    cpu_model: str
    logical_cores: int
    usable_cores: int
    memory_gib: float
    platform: str
    python: str
    libraries: dict[str, str | None]
    loadavg_at_start: tuple[float, float, float]


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, or the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def library_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def flower_version(python: Path | None) -> str | None:
    """The flwr version installed in the separate Flower environment, if there is one."""
    if python is None:
        return None
    probe = "import importlib.metadata as m; print(m.version('flwr'))"
    try:
        out = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def collect(flower_python: Path | None = None) -> MachineInfo:
    """Describe this machine now; pass the Flower environment's python to record flwr too."""
    libraries: dict[str, str | None] = {name: library_version(name) for name in PRODUCT_LIBRARIES}
    libraries["flwr"] = flower_version(flower_python)
    load = os.getloadavg()
    return MachineInfo(
        cpu_model=cpu_model(),
        logical_cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)),
        memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
        platform=platform.platform(),
        python=platform.python_version(),
        libraries=libraries,
        loadavg_at_start=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
    )
