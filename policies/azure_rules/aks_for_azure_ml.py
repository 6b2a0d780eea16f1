"""Rule 17: an AKS cluster attached to Azure ML uses a managed identity and keeps local
accounts.

Source: Azure ML docs, "Introduction to Kubernetes compute target" and "Deploy Azure Machine
Learning extension on AKS or Arc Kubernetes cluster" (limitations): AKS clusters with a
service principal are not supported (use a managed identity), and clusters with local
accounts disabled are not supported by the extension.
"""

from __future__ import annotations

from collections.abc import Mapping

from components.vocabulary.arm_types import MANAGED_CLUSTER
from policies.graph import COMPUTE, ResourceGraph
from policies.violation import Violation

NUMBER = 17
ID = "azure-17-aks-identity-local-accounts"
TITLE = "An AKS cluster for Azure ML runs as a managed identity and keeps local accounts on"
SOURCE = "Azure ML docs: Kubernetes compute target; Azure ML extension on AKS (limitations)"
UNVERIFIED = False


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    attached = {
        cluster.urn: cluster
        for compute in graph.of_type(COMPUTE)
        if (cluster := graph.cluster_of(compute)) is not None and cluster.type == MANAGED_CLUSTER
    }
    for cluster in attached.values():
        identity = cluster.get("identity")
        kind = str(identity.get("type") or "") if isinstance(identity, Mapping) else ""
        principal = cluster.get("servicePrincipalProfile")
        uses_sp = (
            isinstance(principal, Mapping) and str(principal.get("clientId") or "msi") != "msi"
        )
        if uses_sp or kind not in ("SystemAssigned", "UserAssigned"):
            found.append(
                Violation.at(
                    ID,
                    cluster,
                    ("runs as a service principal" if uses_sp else "has no managed identity")
                    + "; Azure ML does not support AKS clusters without a managed identity.",
                    "Give the cluster a user-assigned (or system-assigned) managed identity.",
                )
            )
        if cluster.get("disableLocalAccounts") is True:
            found.append(
                Violation.at(
                    ID,
                    cluster,
                    "disables local accounts, which the Azure ML extension does not support.",
                    "Set disableLocalAccounts to false on clusters attached to Azure ML.",
                )
            )
    return found
