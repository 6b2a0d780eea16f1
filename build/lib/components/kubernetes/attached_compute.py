"""A Kubernetes cluster attached to the workspace as a compute, running as one identity.

Azure ML docs (Kubernetes compute reference): the namespace must exist in the cluster before
the cluster is attached, and only the first user-assigned identity is used; so the compute
waits for the namespace and the instance types, and carries exactly the silo's identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
from pulumi_azure_native import machinelearningservices

from components.aml import workspace_compute
from components.kubernetes.instance_types import InstanceType, instance_type_schemas


def kubernetes_compute(
    resource_name: str,
    *,
    compute_name: str,
    cluster_id: pulumi.Input[str],
    cluster_location: str,
    namespace: str,
    instance_types: Sequence[InstanceType],
    identity_id: pulumi.Input[str],
    workspace: machinelearningservices.Workspace,
    workspace_location: str,
    resource_group_name: pulumi.Input[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> machinelearningservices.Compute:
    return workspace_compute(
        resource_name,
        compute_name=compute_name,
        workspace=workspace,
        workspace_location=workspace_location,
        resource_group_name=resource_group_name,
        identity_id=identity_id,
        properties={
            "compute_type": "Kubernetes",
            "compute_location": cluster_location,
            "resource_id": cluster_id,
            "properties": {
                "namespace": namespace,
                "default_instance_type": instance_types[0].name,
                "instance_types": instance_type_schemas(instance_types),
            },
        },
        tags=tags,
        parent=parent,
        depends_on=depends_on,
    )
