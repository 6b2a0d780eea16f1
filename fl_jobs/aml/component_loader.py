"""Loading the component YAMLs (`components/*.yaml`), with the staged code snapshot as their
``code``.

The aggregate component gets one ``update_<k>`` input per silo: Azure ML components have a
fixed set of inputs, so the builder derives the N-silo variant from the YAML on disk rather
than keeping one YAML per federation size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fl_jobs.aml.environments import CPU, CUDA, StepEnvironment

COMPONENTS_DIR = Path(__file__).resolve().parent / "components"
COMPONENT_NAMES = ("init", "preprocess", "train", "aggregate")


@dataclass(frozen=True)
class FederationComponents:
    init: Any
    preprocess: Any
    train: Any
    aggregate: Any
    #: The silo steps in the CUDA environment, for silos with GPUs (fl_jobs.aml.environments).
    preprocess_cuda: Any = None
    train_cuda: Any = None

    def silo_steps(self, gpus: int) -> tuple[Any, Any]:
        """(preprocess, train) in the environment a silo with ``gpus`` GPUs needs."""
        if gpus > 0:
            return self.preprocess_cuda, self.train_cuda
        return self.preprocess, self.train


def component_yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((COMPONENTS_DIR / f"{name}.yaml").read_text())


def update_port(index: int) -> str:
    """Name of the aggregate input carrying the update of the silo at ``index`` (0-based)."""
    return f"update_{index + 1}"


def aggregate_yaml(n_silos: int) -> dict[str, Any]:
    """The aggregate component extended with ``n_silos`` update inputs."""
    if n_silos < 1:
        raise ValueError("aggregation needs at least one silo")
    data = component_yaml("aggregate")
    for index in range(n_silos):
        port = update_port(index)
        data["inputs"][port] = {"type": "uri_folder", "description": f"update of silo {index + 1}"}
        data["command"] += f" --update ${{{{inputs.{port}}}}}"
    data["name"] = f"{data['name']}_{n_silos}"
    return data


def in_environment(data: dict[str, Any], environment: StepEnvironment) -> dict[str, Any]:
    """A component's YAML in ``environment`` (its name says which, as Azure ML lists it)."""
    if environment == CPU:
        return data
    return {
        **data,
        "name": f"{data['name']}_{environment.name}",
        "environment": environment.component_section(),
    }


def _load(data: dict[str, Any], code: Path) -> Any:
    from azure.ai.ml import load_component

    component: Any = load_component(
        source=io.StringIO(yaml.safe_dump(data, sort_keys=False)),
        relative_origin=str(COMPONENTS_DIR / "component.yaml"),
    )
    component.code = str(code)
    return component


def load_components(code: Path, n_silos: int) -> FederationComponents:
    """All four components, running ``code`` (a staged snapshot, see code_snapshot)."""
    return FederationComponents(
        init=_load(component_yaml("init"), code),
        preprocess=_load(component_yaml("preprocess"), code),
        train=_load(component_yaml("train"), code),
        aggregate=_load(aggregate_yaml(n_silos), code),
        preprocess_cuda=_load(in_environment(component_yaml("preprocess"), CUDA), code),
        train_cuda=_load(in_environment(component_yaml("train"), CUDA), code),
    )
