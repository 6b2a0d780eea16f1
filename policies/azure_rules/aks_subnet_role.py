"""Rule 16: an AKS cluster in a subnet of ours needs its identity's role on that subnet first.

Source: AKS docs, "Use a managed identity in Azure Kubernetes Service" and "Configure Azure
CNI networking": with a virtual network and subnet you bring, the cluster identity must hold
at least Network Contributor on the subnet (AKS grants it only for subnets it creates itself);
without it, node pools fail to join the subnet. A user-assigned control-plane identity can
hold the role before the cluster exists, so the cluster waits for it.
"""

from __future__ import annotations

from components.vocabulary import builtin_roles as names
from components.vocabulary.arm_types import MANAGED_CLUSTER
from policies import roles
from policies.graph import ResourceGraph
from policies.violation import Violation

NUMBER = 16
ID = "azure-16-aks-subnet-role"
TITLE = "An AKS cluster's identity holds Network Contributor on its subnet, before the cluster"
SOURCE = "AKS docs: use a managed identity in AKS; configure Azure CNI networking"
UNVERIFIED = False

SATISFYING = frozenset({names.NETWORK_CONTRIBUTOR, names.CONTRIBUTOR, names.OWNER})


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for cluster in graph.of_type(MANAGED_CLUSTER):
        identity_ids = list(cluster.get("identity", "userAssignedIdentities") or {})
        identities = [graph.find(i) for i in identity_ids]
        principals = [
            i.get("principalId") for i in identities if i is not None and i.get("principalId")
        ]
        subnets = {s.node.urn: s.node for s in graph.cluster_subnets(cluster) if s and s.node}
        for subnet in subnets.values():
            if not principals:
                found.append(
                    Violation.at(
                        ID,
                        cluster,
                        f"joins {subnet.label} without a user-assigned identity that could "
                        "hold Network Contributor on it before the cluster is created.",
                        "Give the cluster a user-assigned control-plane identity and grant it "
                        "Network Contributor on the subnet.",
                    )
                )
                continue
            holding = [
                g
                for p in principals
                for g in graph.grants_of(str(p))
                if roles.role_name(g.role_definition_id) in SATISFYING
                and graph.scope_covers(g.scope, subnet) is not None
            ]
            if not holding:
                found.append(
                    Violation.at(
                        ID,
                        cluster,
                        f"joins {subnet.label}, but its identity holds no Network Contributor "
                        "there; its node pools cannot join the subnet.",
                        f"Grant Network Contributor on {subnet.arm_name} to the cluster's "
                        "identity.",
                    )
                )
            elif not any(graph.waits_for(cluster, g.assignment) for g in holding):
                found.append(
                    Violation.at(
                        ID,
                        cluster,
                        f"is created without waiting for its identity's role on {subnet.label}.",
                        "Make the cluster depend on that role assignment.",
                    )
                )
    return found
