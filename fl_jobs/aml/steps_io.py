"""What each step of a pipeline job runs on and which data it reads and writes.

The data-flow check, the approval request and the dry-run table all need the same view of a
pipeline: per step, its compute and the datastore URI behind every data input and output,
with bindings to other steps' outputs (or to pipeline inputs) resolved to where that data
really lives. Works on jobs built with ``@dsl.pipeline`` and on jobs loaded back from YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DATA_TYPES = frozenset(
    {"uri_folder", "uri_file", "mltable", "custom_model", "mlflow_model", "triton_model"}
)
_STEP_BINDING = re.compile(r"^\$\{\{parent\.jobs\.(?P<step>[^.]+)\.outputs\.(?P<port>[^}]+)\}\}$")
_PIPELINE_BINDING = re.compile(r"^\$\{\{parent\.inputs\.(?P<name>[^}]+)\}\}$")


@dataclass(frozen=True)
class DataPort:
    """One data input or output of a step; ``uri`` is None when no explicit location is set
    (for an output that means the workspace's default datastore)."""

    name: str
    uri: str | None
    produced_by: str | None = None


@dataclass(frozen=True)
class StepIO:
    """A step as the silo rules see it."""

    name: str
    compute: str | None
    instance_type: str | None
    identity: str | None = None
    """``managed``, ``user_identity``, ``aml_token``, or None (the service's default)."""
    identity_client_id: str | None = None
    """The managed identity's client id, when the step names one."""
    reads: list[DataPort] = field(default_factory=list)
    writes: list[DataPort] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def _strip_compute(compute: object) -> str | None:
    if compute is None or compute == "":
        return None
    text = str(compute)
    return text.removeprefix("azureml:")


def _declared_type(node: Any, port: str, *, output: bool) -> str | None:
    component = getattr(node, "component", None)
    ports = getattr(component, "outputs" if output else "inputs", None) or {}
    declared = ports.get(port)
    return getattr(declared, "type", None) if declared is not None else None


def _output_uri(node: Any, port: str) -> str | None:
    output = node.outputs.get(port)
    if output is None:
        return None
    path = getattr(output, "path", None)
    if path is None:
        data = getattr(output, "_data", None)
        path = getattr(data, "path", None)
    return str(path) if path else None


def _resolve_input(job: Any, value: Any) -> tuple[str | None, str | None]:
    """(uri, producing step) for an input value, following bindings."""
    owner = getattr(value, "_owner", None)
    if owner is not None and hasattr(value, "_port_name"):  # bound to another step's output
        return _output_uri(owner, value._port_name), owner.name
    path = getattr(value, "path", value)
    if path is None:
        return None, None
    text = str(path)
    step_binding = _STEP_BINDING.match(text)
    if step_binding:
        producer = job.jobs.get(step_binding["step"])
        if producer is None:
            return None, step_binding["step"]
        return _output_uri(producer, step_binding["port"]), producer.name
    pipeline_binding = _PIPELINE_BINDING.match(text)
    if pipeline_binding:
        pipeline_input = (job.inputs or {}).get(pipeline_binding["name"])
        data = getattr(pipeline_input, "_data", pipeline_input)
        return _resolve_input(job, data)
    return text, None


def _is_data_input(node: Any, port: str, value: Any) -> bool:
    declared = _declared_type(node, port, output=False)
    if declared is not None:
        return declared in DATA_TYPES
    return getattr(value, "type", None) in DATA_TYPES or hasattr(value, "_owner")


def _instance_type(node: Any) -> str | None:
    resources = getattr(node, "resources", None)
    if resources is None:
        return None
    if isinstance(resources, dict):
        return resources.get("instance_type")
    return getattr(resources, "instance_type", None)


def _identity(node: Any) -> str | None:
    identity = getattr(node, "identity", None)
    if identity is None:
        return None
    if isinstance(identity, dict):
        kind = identity.get("type")
    else:
        kind = getattr(identity, "type", None) or type(identity).__name__
    text = str(kind).lower()
    for known, name in (("managed", "managed"), ("user", "user_identity"), ("token", "aml_token")):
        if known in text:
            return name
    return text


def _client_id(node: Any) -> str | None:
    identity = getattr(node, "identity", None)
    value = identity.get("client_id") if isinstance(identity, dict) else None
    value = value or getattr(identity, "client_id", None)
    return str(value) if value else None


def describe_steps(job: Any) -> list[StepIO]:
    """Every step of ``job`` (an azure-ai-ml ``PipelineJob``) in definition order."""
    steps: list[StepIO] = []
    for name, node in job.jobs.items():
        reads: list[DataPort] = []
        params: dict[str, Any] = {}
        for port, node_input in (node.inputs or {}).items():
            value = getattr(node_input, "_data", node_input)
            if value is None:
                continue
            if _is_data_input(node, port, value):
                uri, producer = _resolve_input(job, value)
                reads.append(DataPort(port, uri, producer))
            else:
                params[port] = value
        writes = [DataPort(port, _output_uri(node, port)) for port in (node.outputs or {})]
        steps.append(
            StepIO(
                name=name,
                compute=_strip_compute(getattr(node, "compute", None)),
                instance_type=_instance_type(node),
                identity=_identity(node),
                identity_client_id=_client_id(node),
                reads=reads,
                writes=writes,
                params=params,
            )
        )
    return steps
