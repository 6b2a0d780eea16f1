"""The separate Flower environment: where it is, how to create it, how to run code in it.

Flower is a peer the benchmarks measure against, never a dependency of the product, so it lives
in its own virtual environment (``.venv-flwr``, created by ``flower_env.sh``). Code that needs
flwr runs there as a subprocess with telemetry off, its home and Ray's temp folder in a
throw-away directory, and the repository root on ``PYTHONPATH`` so that it can import the
import-light modules it shares with the product side.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FLOWER_VENV = Path(os.environ.get("FLWR_VENV", REPO_ROOT / ".venv-flwr"))
SETUP_SCRIPT = Path(__file__).resolve().parent / "flower_env.sh"
_STAMP = ".flwr-bench-installed"


class FlowerEnvironmentError(RuntimeError):
    """The Flower environment is missing or broken, with how to (re)create it."""


def flower_python() -> Path | None:
    """The Flower environment's interpreter, or None when the environment is not set up."""
    python = FLOWER_VENV / "bin" / "python"
    if python.is_file() and (FLOWER_VENV / _STAMP).is_file():
        return python
    return None


def ensure_flower_env() -> Path:
    """Create the Flower environment if needed (idempotent) and return its interpreter."""
    try:
        subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, cwd=REPO_ROOT)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise FlowerEnvironmentError(
            f"could not create the Flower environment at {FLOWER_VENV} ({exc}); run "
            f"`bash {SETUP_SCRIPT.relative_to(REPO_ROOT)}` and read its output"
        ) from None
    python = flower_python()
    if python is None:
        raise FlowerEnvironmentError(f"{SETUP_SCRIPT} finished but {FLOWER_VENV} is incomplete")
    return python


def flower_env(scratch: Path) -> dict[str, str]:
    """Environment for a Flower subprocess: no telemetry, state under ``scratch``, loopback."""
    home = scratch / "flwr-home"
    ray_tmp = scratch / "ray"
    home.mkdir(parents=True, exist_ok=True)
    ray_tmp.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "VIRTUAL_ENV"))}
    env.update(
        {
            "FLWR_TELEMETRY_ENABLED": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
            "FLWR_HOME": str(home),
            "RAY_TMPDIR": str(ray_tmp),
            "TMPDIR": str(ray_tmp),
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env
