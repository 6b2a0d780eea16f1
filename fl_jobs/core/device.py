"""Which torch device a silo trains on: ``--device auto|cpu|cuda``.

``auto`` (the default) takes CUDA when torch sees a GPU, else the CPU; ``cuda`` refuses to start
without one rather than silently training on the CPU. Each silo resolves it on its own machine
(a local worker, or an Azure ML train step on its compute), so GPU and CPU silos can mix.

Reproducibility: on the CPU, results are bit-identical to a run without this setting (the
data order comes from a CPU generator either way). On CUDA, torch's kernels may be
non-deterministic; runs repeat on the same GPU model and torch build only where torch allows
(https://pytorch.org/docs/stable/notes/randomness.html), and they differ from CPU runs in the
last bits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fl_jobs.errors import JobConfigError

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _torch_build() -> str:
    import torch

    cuda = getattr(torch.version, "cuda", None)
    return f"torch {torch.__version__}" + (f" (CUDA {cuda})" if cuda else ", a CPU-only build")


def resolve_device(
    requested: str,
    *,
    cuda_available: Callable[[], bool] = _cuda_available,
    torch_build: Callable[[], str] = _torch_build,
) -> str:
    """``"cpu"`` or ``"cuda"`` for ``requested``; JobConfigError when CUDA is asked for and
    torch sees no GPU."""
    if requested not in DEVICES:
        raise JobConfigError(
            f"device {requested!r} is not one of {', '.join(DEVICES)}",
            "use --device auto (a GPU when there is one), cpu or cuda",
        )
    if requested == "cpu":
        return "cpu"
    available = cuda_available()
    if requested == "cuda" and not available:
        raise JobConfigError(
            f"--device cuda, but no CUDA device is visible to {torch_build()}",
            "install a CUDA build of torch (README: Install anywhere) on a machine with an "
            "NVIDIA GPU, or use --device auto or cpu",
        )
    return "cuda" if available else "cpu"
