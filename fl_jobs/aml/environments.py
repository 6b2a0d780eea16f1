"""Which environment a step runs in: the CPU one, or the CUDA one on a silo with GPUs.

The manifest says how many NVIDIA GPUs a silo's step gets (``gpus``: from the silo's VM size,
or from its Kubernetes instance type). A step on a GPU silo runs in the CUDA environment
(``environment/conda-cuda.yaml`` on Azure ML's curated CUDA base image), every other step in
the CPU one (``environment/conda.yaml``), so a CPU silo never pulls several GB of CUDA
libraries. Both pin the same packages apart from torch's wheel index. ``--device auto`` then
trains on the GPU where torch sees one.

:func:`check_environments` is the job check: it reads a built (or read-back) pipeline job and
refuses a GPU silo on the CPU environment (its GPUs would sit idle), a CPU silo on the CUDA
one, and ``--device cuda`` with a silo that has no GPU (that silo would fail at start).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fl_jobs.aml.dataflow import DataFlowViolation
from fl_jobs.run.manifest import FederationManifest, SiloRef

ENVIRONMENT_DIR = Path(__file__).resolve().parent / "environment"


@dataclass(frozen=True)
class StepEnvironment:
    """A base image and its conda file (a name in ``environment/``)."""

    name: str
    image: str
    conda_file: str

    def component_section(self) -> dict[str, str]:
        """The ``environment:`` section of a component YAML (relative to components/)."""
        return {"image": self.image, "conda_file": f"../environment/{self.conda_file}"}

    def sdk(self, code: Path) -> Any:
        """An azure-ai-ml ``Environment`` whose conda file is the staged snapshot's copy."""
        from azure.ai.ml.entities import Environment

        conda = code / "fl_jobs" / "aml" / "environment" / self.conda_file
        return Environment(image=self.image, conda_file=str(conda))


CPU = StepEnvironment("cpu", "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04", "conda.yaml")
CUDA = StepEnvironment(
    "cuda", "mcr.microsoft.com/azureml/openmpi5.0-cuda12.6-ubuntu24.04", "conda-cuda.yaml"
)
ENVIRONMENTS = (CPU, CUDA)


def environment_for(silo: SiloRef | None) -> StepEnvironment:
    """The CUDA environment for a silo with GPUs; the CPU one otherwise (and for the
    orchestrator, which aggregates and evaluates on the CPU)."""
    return CUDA if silo is not None and silo.gpus > 0 else CPU


def _image_of(node: Any) -> str | None:
    """The base image a pipeline node runs: its own environment (a command node) or its
    component's; None when it cannot be told (a registered environment by name)."""
    for holder in (node, getattr(node, "component", None)):
        environment = getattr(holder, "environment", None)
        image = getattr(environment, "image", None)
        if isinstance(image, str):
            return image
    return None


def _device_of(node: Any, default: str) -> str:
    """``--device`` on the node's command line, else the job's."""
    command = str(getattr(node, "command", None) or getattr(node.component, "command", ""))
    words = command.split()
    if "--device" in words[:-1]:
        return words[words.index("--device") + 1]
    return default


def check_environments(
    job: Any, manifest: FederationManifest, device: str
) -> list[DataFlowViolation]:
    """Every silo step's environment against its silo's GPUs; one violation per problem,
    naming the step, the silo and the fix."""
    by_compute = {silo.compute: silo for silo in manifest.silos}
    images = {env.image: env for env in ENVIRONMENTS}
    problems: list[DataFlowViolation] = []
    for step, node in job.jobs.items():
        silo = by_compute.get(str(getattr(node, "compute", "") or ""))
        if silo is None:
            continue
        wanted = environment_for(silo)
        image = _image_of(node)
        found = images.get(image or "")
        if found is None:
            problems.append(
                DataFlowViolation(
                    step,
                    None,
                    f"silo {silo.name}'s step runs image {image!r}, not one of fl-sandbox's "
                    "environments - build the job with `fl-sandbox submit`, which picks them",
                )
            )
        elif found != wanted:
            gpus = f"{silo.gpus} GPU(s)" if silo.gpus else "no GPU"
            problems.append(
                DataFlowViolation(
                    step,
                    None,
                    f"silo {silo.name} ({gpus}) runs the {found.name} environment "
                    f"({found.image}) - it needs the {wanted.name} one ({wanted.image}); rebuild "
                    "the job from a manifest whose `gpus` match the silo's compute",
                )
            )
        if _device_of(node, device) == "cuda" and silo.gpus == 0:
            problems.append(
                DataFlowViolation(
                    step,
                    None,
                    f"--device cuda, but silo {silo.name} has no GPU (compute {silo.compute!r}) "
                    "- use --device auto, which takes the GPU where there is one",
                )
            )
    return problems
