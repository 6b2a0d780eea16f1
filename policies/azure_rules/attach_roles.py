"""Rule 20: the workspace's user-assigned identity holds the attach roles on every cluster.

Source: Azure ML docs, "Attach a Kubernetes cluster to Azure Machine Learning workspace"
(https://learn.microsoft.com/azure/machine-learning/how-to-attach-kubernetes-to-workspace):
"if a user-assigned managed identity is specified in Azure Machine Learning workspace
creation, the following role assignments need to be granted to the managed identity manually
before attaching the compute": Reader, Kubernetes Extension Contributor and Azure Kubernetes
Service Cluster Admin Role on the cluster, and Azure Relay Owner for Arc clusters ("Azure
Relay resource is created during the extension deployment under the same Resource Group as
the Arc-enabled Kubernetes cluster"). "If the 'Kubernetes Extension Contributor' role
permission is not available, the cluster attachment fails with 'extension not installed'
error. If the 'Azure Kubernetes Service Cluster Admin' role permission is not available, the
cluster attachment fails with 'internal server' error." So each grant must exist, at a scope
covering the cluster (Relay Owner: its resource group), and the compute must wait for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from components.vocabulary import builtin_roles as names
from components.vocabulary.arm_types import CONNECTED_CLUSTER
from policies import roles
from policies.graph import COMPUTE, Node, ResourceGraph
from policies.violation import Violation

NUMBER = 20
ID = "azure-20-kubernetes-attach-roles"
TITLE = "The workspace identity holds the attach roles on each cluster before the attach"
SOURCE = (
    "Azure ML docs: attach a Kubernetes cluster, user-assigned workspace identity "
    "(https://learn.microsoft.com/azure/machine-learning/how-to-attach-kubernetes-to-workspace)"
)
UNVERIFIED = False

ON_CLUSTER = (names.READER, names.KUBERNETES_EXTENSION_CONTRIBUTOR, names.AKS_CLUSTER_ADMIN)
ABOVE_RESOURCE = ("resource-group", "subscription", "management-group")


_ABOVE = re.compile(
    r"^(/providers/microsoft\.management/managementgroups/[^/]+|/subscriptions/[^/]+"
    r"(/resourcegroups/[^/]+)?)$"
)


def _covers_group(graph: ResourceGraph, scope: str, cluster: Node) -> bool:
    """Whether ``scope`` covers the cluster's resource group; when a deployed stack no longer
    tells that group (an existing cluster, read), any resource-group scope may be it."""
    if cluster.resource_group is None:
        return _ABOVE.match(scope.strip().rstrip("/").lower()) is not None
    return graph.scope_covers(scope, cluster) in ABOVE_RESOURCE


def _workspace_of(graph: ResourceGraph, compute: Node) -> Node | None:
    name = str(compute.get("workspaceName") or "").lower()
    found = [w for w in graph.workspaces() if w.arm_name.lower() == name]
    return found[0] if len(found) == 1 else None


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for compute in graph.of_type(COMPUTE):
        props = compute.get("properties")
        if not isinstance(props, Mapping) or props.get("computeType") != "Kubernetes":
            continue
        cluster = graph.cluster_of(compute)
        workspace = _workspace_of(graph, compute)
        if cluster is None or workspace is None:
            continue  # rule 19 names a compute attached to no cluster of this sandbox
        identity = graph.find(workspace.get("primaryUserAssignedIdentity"))
        principal = identity.get("principalId") if identity is not None else None
        if identity is None or not isinstance(principal, str):
            continue  # a system-assigned workspace identity: Azure grants these itself
        grants = graph.grants_of(principal)
        wanted: list[tuple[str, str, bool]] = [(role, cluster.label, False) for role in ON_CLUSTER]
        if cluster.type == CONNECTED_CLUSTER:
            wanted.append((names.RELAY_OWNER, f"the resource group of {cluster.label}", True))
        for role, where, group in wanted:
            holding = [
                g
                for g in grants
                if roles.role_name(g.role_definition_id) == role
                and (
                    _covers_group(graph, g.scope, cluster)
                    if group
                    else graph.scope_covers(g.scope, cluster) is not None
                )
            ]
            if not holding:
                found.append(
                    Violation.at(
                        ID,
                        compute,
                        f"is attached by {identity.label}, which holds no {role} on {where}; "
                        "Azure ML's attach fails without it.",
                        f"Grant {role} on {where} to {identity.arm_name} before the attach.",
                    )
                )
            elif not any(graph.waits_for(compute, g.assignment) for g in holding):
                found.append(
                    Violation.at(
                        ID,
                        compute,
                        f"is attached without waiting for {identity.arm_name}'s {role} on {where}.",
                        "Make the compute depend on that role assignment.",
                    )
                )
    return found
