"""Rule 21: an HBI workspace with AKS attached: its system-assigned identity holds Storage
Blob Data Contributor and Storage Account Contributor on the workspace storage.

Source: Azure ML docs, "Secure an Azure Machine Learning inferencing environment with virtual
networks" (https://learn.microsoft.com/azure/machine-learning/how-to-secure-kubernetes-inferencing-environment):
"When attaching AKS cluster to an HBI workspace, assign a system-assigned managed identity
with both `Storage Blob Data Contributor` and `Storage Account Contributor` roles", and "Use
system-assigned managed identity when creating workspace, as storage account with private
endpoint only allows access with system-assigned managed identity." The grants can exist only
once the workspace (and so its system identity) does; the attach waits for them.
"""

from __future__ import annotations

from collections.abc import Mapping

from components.vocabulary import builtin_roles as names
from components.vocabulary.arm_types import MANAGED_CLUSTER
from policies import roles
from policies.graph import COMPUTE, ResourceGraph
from policies.violation import Violation

NUMBER = 21
ID = "azure-21-hbi-aks-system-identity-storage"
TITLE = "An HBI workspace attaching AKS: its system identity holds the two storage roles first"
SOURCE = (
    "Azure ML docs: secure Kubernetes inferencing environment (HBI workspace with AKS) "
    "(https://learn.microsoft.com/azure/machine-learning/how-to-secure-kubernetes-inferencing-environment)"
)
UNVERIFIED = False

NEEDED = (names.BLOB_DATA_CONTRIBUTOR, names.STORAGE_ACCOUNT_CONTRIBUTOR)
ACCEPTED = {
    names.BLOB_DATA_CONTRIBUTOR: {names.BLOB_DATA_CONTRIBUTOR, names.BLOB_DATA_OWNER},
    names.STORAGE_ACCOUNT_CONTRIBUTOR: {
        names.STORAGE_ACCOUNT_CONTRIBUTOR,
        names.CONTRIBUTOR,
        names.OWNER,
    },
}


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for workspace in graph.workspaces():
        if workspace.get("hbiWorkspace") is not True:
            continue
        aks_computes = []
        for compute in graph.of_type(COMPUTE):
            props = compute.get("properties")
            if not isinstance(props, Mapping) or props.get("computeType") != "Kubernetes":
                continue
            if str(compute.get("workspaceName") or "").lower() != workspace.arm_name.lower():
                continue
            cluster = graph.cluster_of(compute)
            if cluster is not None and cluster.type == MANAGED_CLUSTER:
                aks_computes.append(compute)
        storage = graph.find(workspace.get("storageAccount"))
        if not aks_computes or storage is None:
            continue
        principal = workspace.get("identity", "principalId")
        kind = str(workspace.get("identity", "type") or "")
        if "SystemAssigned" not in kind or not isinstance(principal, str):
            found.append(
                Violation.at(
                    ID,
                    workspace,
                    "is HBI and attaches AKS clusters but has no system-assigned identity.",
                    "Create the workspace with identity type 'SystemAssigned,UserAssigned'.",
                )
            )
            continue
        grants = graph.grants_of(principal)
        for role in NEEDED:
            holding = [
                g
                for g in grants
                if roles.role_name(g.role_definition_id) in ACCEPTED[role]
                and graph.scope_covers(g.scope, storage) is not None
            ]
            if not holding:
                found.append(
                    Violation.at(
                        ID,
                        workspace,
                        f"is HBI and attaches AKS, but its system-assigned identity holds no "
                        f"{role} on {storage.label}.",
                        f"Grant {role} on {storage.arm_name} to the workspace's "
                        "system-assigned identity (identity.principalId) before the attach.",
                    )
                )
                continue
            for compute in aks_computes:
                if not any(graph.waits_for(compute, g.assignment) for g in holding):
                    found.append(
                        Violation.at(
                            ID,
                            compute,
                            f"attaches AKS to HBI workspace {workspace.arm_name} without "
                            f"waiting for its system identity's {role} on {storage.arm_name}.",
                            "Make the compute depend on that role assignment.",
                        )
                    )
    return found
