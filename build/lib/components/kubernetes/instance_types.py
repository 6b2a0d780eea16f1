"""Instance types: what one job pod gets (CPU, memory, GPUs) and which nodes it lands on.

The same list is declared twice, as Azure ML needs it: as ``InstanceType`` custom resources in
the cluster (``amlarc.azureml.com/v1alpha1``, installed by the extension's CRD) and in the
attached compute's properties. The first is the default for jobs that name none. Requests
equal limits, so a job gets exactly what its type says (users of the archived accelerator hit
jobs stuck on undersized or missing types).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

API_VERSION = "amlarc.azureml.com/v1alpha1"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class InstanceType:
    """One instance type, ready to declare."""

    name: str
    cpu: str
    memory: str
    gpu: int = 0
    node_selector: Mapping[str, str] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, str]:
        found = {"cpu": self.cpu, "memory": self.memory}
        if self.gpu:
            found[GPU_RESOURCE] = str(self.gpu)
        return found


def instance_type_resources(
    name: str,
    types: Sequence[InstanceType],
    *,
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> list[k8s.apiextensions.CustomResource]:
    """The ``InstanceType`` objects, in the cluster of ``provider``, after the extension."""
    return [
        k8s.apiextensions.CustomResource(
            f"{name}-instance-type-{itype.name}",
            api_version=API_VERSION,
            kind="InstanceType",
            metadata={"name": itype.name},
            spec={
                "nodeSelector": dict(itype.node_selector),
                "resources": {"requests": itype.resources, "limits": itype.resources},
            },
            opts=pulumi.ResourceOptions(
                parent=parent, provider=provider, depends_on=list(depends_on)
            ),
        )
        for itype in types
    ]


def instance_type_schemas(types: Sequence[InstanceType]) -> dict[str, dict[str, object]]:
    """The compute properties' ``instance_types`` map."""
    return {
        t.name: {
            "node_selector": dict(t.node_selector),
            "resources": {"requests": t.resources, "limits": t.resources},
        }
        for t in types
    }
