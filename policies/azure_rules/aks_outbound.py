"""Rule 43: an AKS cluster's outbound type matches its subnet's outbound path.

Source: Microsoft Learn, "Create a managed or user-assigned NAT gateway for your Azure
Kubernetes Service (AKS) cluster"
(https://learn.microsoft.com/azure/aks/nat-gateway) and "Customize cluster egress with
outbound types in AKS" (https://learn.microsoft.com/azure/aks/egress-outboundtype):
``userAssignedNATGateway`` is for a NAT gateway "associated with the cluster subnet" (the
cluster refuses to be created without one), while ``loadBalancer`` (the default) creates a
public load balancer with its own outbound IP, which a subnet NAT gateway then bypasses: an
unused public IP on nodes that should leave through the gateway.
"""

from __future__ import annotations

from components.vocabulary.arm_types import MANAGED_CLUSTER
from policies.graph import ResourceGraph
from policies.violation import Violation

NUMBER = 43
ID = "azure-43-aks-outbound-type"
TITLE = "AKS outboundType is userAssignedNATGateway exactly where its subnet has a NAT gateway"
SOURCE = (
    "AKS docs: NAT gateway (https://learn.microsoft.com/azure/aks/nat-gateway); outbound types "
    "(https://learn.microsoft.com/azure/aks/egress-outboundtype)"
)
UNVERIFIED = False

NAT = "userAssignedNATGateway"


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for cluster in graph.of_type(MANAGED_CLUSTER):
        outbound = (cluster.get("networkProfile") or {}).get("outboundType") or "loadBalancer"
        for profile in cluster.get("agentPoolProfiles") or []:
            profile = profile or {}
            info = graph.find_subnet(profile.get("vnetSubnetID") or profile.get("vnetSubnetId"))
            if info is None or info.node is None:
                continue
            has_nat = bool(info.node.get("natGateway"))
            if has_nat and outbound != NAT:
                found.append(
                    Violation.at(
                        ID,
                        cluster,
                        f"uses outboundType {outbound!r} in subnet '{info.name}', which leaves "
                        "through a NAT gateway; the cluster would add a public load balancer "
                        "and IP its nodes do not use.",
                        f"Set network_profile.outbound_type='{NAT}'.",
                    )
                )
            elif not has_nat and outbound == NAT:
                found.append(
                    Violation.at(
                        ID,
                        cluster,
                        f"uses outboundType {NAT!r} but subnet '{info.name}' has no NAT "
                        "gateway; AKS refuses to create the cluster.",
                        "Associate a NAT gateway with the subnet (computeOutbound: nat-gateway), "
                        "or use outbound_type='loadBalancer'.",
                    )
                )
    return found
