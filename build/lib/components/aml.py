"""Azure ML building blocks shared by the orchestrator and the silos.

Both kinds of compute scale to 0 and run as one user-assigned identity; both kinds of
datastore hold no credential, so data is reached only by identities holding a role on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
from pulumi_azure_native import machinelearningservices


def identity_datastore(
    resource_name: str,
    *,
    datastore_name: str,
    account_name: pulumi.Input[str],
    container_name: pulumi.Input[str],
    workspace: machinelearningservices.Workspace,
    resource_group_name: pulumi.Input[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> machinelearningservices.Datastore:
    """An AML blob datastore with no stored credential: jobs reach the data with the
    identity of the compute they run on, so only identities granted a role can read it."""
    return machinelearningservices.Datastore(
        resource_name,
        name=datastore_name,
        resource_group_name=resource_group_name,
        workspace_name=workspace.name,
        properties={
            "datastore_type": "AzureBlob",
            "account_name": account_name,
            "container_name": container_name,
            "endpoint": "core.windows.net",
            "protocol": "https",
            "credentials": {"credentials_type": "None"},
            # The studio must not preview data with the workspace's own identity.
            "service_data_access_auth_identity": "None",
            "tags": dict(tags),
        },
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def aml_cluster(
    resource_name: str,
    *,
    compute_name: str,
    workspace_location: str,
    location: str,
    vm_size: str,
    max_nodes: int,
    identity_id: pulumi.Input[str],
    workspace: machinelearningservices.Workspace,
    resource_group_name: pulumi.Input[str],
    subnet_id: pulumi.Input[str] | None,
    node_public_ip: bool,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> machinelearningservices.Compute:
    """An AML compute cluster that scales to 0 and runs as one user-assigned identity.

    The compute resource lives in the workspace's region (``location``) and its nodes in
    ``location`` of the silo (``compute_location``), as Azure Verified Modules declare
    cross-region clusters. ``depends_on`` carries what Azure needs first (the workspace's
    private endpoint when nodes have no public IP)."""
    cluster: dict[str, object] = {
        "vm_size": vm_size,
        "vm_priority": "Dedicated",
        "os_type": "Linux",
        "scale_settings": {
            "min_node_count": 0,
            "max_node_count": max_nodes,
            "node_idle_time_before_scale_down": "PT10M",
        },
        "enable_node_public_ip": node_public_ip,
        "remote_login_port_public_access": "Disabled",
    }
    if subnet_id is not None:
        cluster["subnet"] = {"id": subnet_id}
    return workspace_compute(
        resource_name,
        compute_name=compute_name,
        workspace=workspace,
        workspace_location=workspace_location,
        resource_group_name=resource_group_name,
        identity_id=identity_id,
        properties={
            "compute_type": "AmlCompute",
            "compute_location": location,
            "properties": cluster,
        },
        tags=tags,
        parent=parent,
        depends_on=depends_on,
    )


def workspace_compute(
    resource_name: str,
    *,
    compute_name: str,
    workspace: machinelearningservices.Workspace,
    workspace_location: str,
    resource_group_name: pulumi.Input[str],
    identity_id: pulumi.Input[str],
    properties: dict[str, object],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> machinelearningservices.Compute:
    """A compute of the workspace (any type in ``properties``) running as exactly one
    user-assigned identity, with local authentication off."""
    return machinelearningservices.Compute(
        resource_name,
        compute_name=compute_name,
        location=workspace_location,
        resource_group_name=resource_group_name,
        workspace_name=workspace.name,
        identity={"type": "UserAssigned", "user_assigned_identities": [identity_id]},
        properties={**properties, "disable_local_auth": True},
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
