"""Rule 22: an AKS cluster attached to a workspace with a private endpoint is in its region.

Source: Azure ML docs, "Secure an Azure Machine Learning inferencing environment with virtual
networks", Limitations
(https://learn.microsoft.com/azure/machine-learning/how-to-secure-kubernetes-inferencing-environment):
"If your workspace has a __private endpoint__, the Azure Kubernetes Service cluster must be in
the same Azure region as the workspace." The article is about inferencing; whether a training
attach is refused or only unsupported is *unverified*, so the spec refuses it up front
(``blueprints/spec.py``) and this rule checks the built graph.
"""

from __future__ import annotations

from collections.abc import Mapping

from components.vocabulary.arm_types import MANAGED_CLUSTER
from policies.graph import COMPUTE, ResourceGraph
from policies.violation import Violation

NUMBER = 22
ID = "azure-22-aks-in-private-workspace-region"
TITLE = "AKS attached to a workspace with a private endpoint is in the workspace's region"
SOURCE = (
    "Azure ML docs: secure Kubernetes inferencing environment, limitations "
    "(https://learn.microsoft.com/azure/machine-learning/how-to-secure-kubernetes-inferencing-environment)"
)
UNVERIFIED = True


def _region(value: object) -> str:
    return str(value or "").replace(" ", "").lower()


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for workspace in graph.workspaces():
        if not graph.private_endpoints_to(workspace, "amlworkspace"):
            continue
        region = _region(workspace.get("location"))
        for compute in graph.of_type(COMPUTE):
            props = compute.get("properties")
            if not isinstance(props, Mapping) or props.get("computeType") != "Kubernetes":
                continue
            if str(compute.get("workspaceName") or "").lower() != workspace.arm_name.lower():
                continue
            cluster = graph.cluster_of(compute)
            if cluster is None or cluster.type != MANAGED_CLUSTER:
                continue
            where = _region(cluster.get("location"))
            if where and region and where != region:
                found.append(
                    Violation.at(
                        ID,
                        cluster,
                        f"is in {where}, but workspace {workspace.arm_name} ({region}) has a "
                        "private endpoint; Azure ML wants the AKS cluster in its region.",
                        f"Create the cluster in {region}, or run that silo as kind 'aml'.",
                    )
                )
    return found
