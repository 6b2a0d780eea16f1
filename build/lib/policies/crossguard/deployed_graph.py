"""Build the invariants' resource graph from what CrossGuard hands a stack policy.

CrossGuard gives each resource's *outputs*, which for azure-native resources lack inputs such
as ``resourceGroupName`` or ``virtualNetworkName``; they are recovered from the property
dependencies (the input came from another resource's ``name``). The root stack resource
carries the stack outputs, hence the ``federation`` manifest and the blueprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import PolicyResource, Secret

from policies.graph import ResourceGraph

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class DeployedResource:
    """A CrossGuard resource in the shape the graph reads (``ResourceLike``)."""

    urn: str
    type: str
    name: str
    parent: str | None
    outputs: Mapping[str, Any]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()


def plain(value: Any) -> Any:
    """Deep copy of CrossGuard's (proxied) property values into plain dicts and lists.

    Reading an unknown value (during preview) raises CrossGuard's UnknownValueError, which
    it reports as "can't run policy during preview"; the policy runs for real on update.
    """
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _recover_names(resource: PolicyResource, props: dict[str, Any]) -> dict[str, Any]:
    for key, dependencies in resource.property_dependencies.items():
        if props.get(key) is not None or not key.endswith("Name") or len(dependencies) != 1:
            continue
        name = dependencies[0].props.get("name")
        if isinstance(name, str):
            props[key] = name
    return props


def _dependencies(resource: PolicyResource) -> tuple[str, ...]:
    """URNs the resource waits for: explicit dependencies and input dependencies."""
    found = [d.urn for d in resource.dependencies or []]
    for deps in (resource.property_dependencies or {}).values():
        found += [d.urn for d in deps]
    return tuple(dict.fromkeys(found))


def graph_from_stack(
    resources: list[PolicyResource], blueprint: str | None = None
) -> ResourceGraph:
    """The graph of a deployed (or previewed) stack; ``blueprint`` overrides the outputs'."""
    nodes: list[DeployedResource] = []
    outputs: dict[str, Any] = {}
    for resource in resources:
        props = plain(resource.props)
        if resource.resource_type == STACK_TYPE:
            outputs = props
            continue
        nodes.append(
            DeployedResource(
                urn=resource.urn,
                type=resource.resource_type,
                name=resource.name,
                parent=resource.parent.urn if resource.parent is not None else None,
                outputs=_recover_names(resource, props),
                dependencies=_dependencies(resource),
            )
        )
    if blueprint:
        federation = outputs.get("federation")
        federation = dict(federation) if isinstance(federation, Mapping) else {}
        outputs = {**outputs, "federation": {**federation, "blueprint": blueprint}}
    return ResourceGraph.build(nodes, outputs)
