"""Device selection (``--device auto|cpu|cuda``), run on this CPU-only machine: CUDA cannot
be run here (no GPU, and torch is the CPU build), so the CUDA side is exercised through the
availability check the selection consults, and the CPU side end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fl_jobs.config import load_job_config
from fl_jobs.core.device import resolve_device
from fl_jobs.core.model_io import load_weights
from fl_jobs.errors import JobConfigError
from fl_jobs.rounds.job_parts import train_params_from_config

REPO = Path(__file__).resolve().parents[2]


def test_selection_with_and_without_a_gpu() -> None:
    def gpu() -> bool:
        return True

    def none() -> bool:
        return False

    assert resolve_device("auto", cuda_available=gpu) == "cuda"
    assert resolve_device("cuda", cuda_available=gpu) == "cuda"
    assert resolve_device("cpu", cuda_available=gpu) == "cpu"
    assert resolve_device("auto", cuda_available=none) == "cpu"
    with pytest.raises(JobConfigError, match="no CUDA device is visible to torch X"):
        resolve_device("cuda", cuda_available=none, torch_build=lambda: "torch X")
    with pytest.raises(JobConfigError, match="device 'tpu' is not one of auto, cpu, cuda"):
        resolve_device("tpu")


def test_this_machine_resolves_to_the_cpu() -> None:
    assert not torch.cuda.is_available()  # CUDA cannot be exercised here
    assert resolve_device("auto") == "cpu"
    config = load_job_config(None, {"example": "digits"})
    assert config.training.device == "auto"
    assert train_params_from_config(config).device == "cpu"


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *(sys.executable, "-m", "fl_jobs", "run", "--example", "digits", "--silos", "2"),
            *("--rounds", "2", "--no-baselines", "--no-tracking", *args),
        ],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cuda_without_a_gpu_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    done = _run(tmp_path, "--device", "cuda", "--output-dir", "out")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: --device cuda, but no CUDA device is visible to torch")
    assert "install a CUDA build of torch" in line
    assert not (tmp_path / "out").exists()


def test_cpu_results_are_bit_identical_with_or_without_the_setting(tmp_path: Path) -> None:
    assert _run(tmp_path, "--output-dir", "default").returncode == 0
    assert _run(tmp_path, "--device", "cpu", "--output-dir", "cpu").returncode == 0
    a, _ = load_weights(tmp_path / "default" / "global_model.pt")
    b, _ = load_weights(tmp_path / "cpu" / "global_model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
