"""Rule 10: computes without public IPs have an explicit outbound path.

Source: Azure Virtual Network docs, "Default outbound access in Azure": subnets get default
outbound access with network API 2024-05-01; from API 2025-07-01 new subnets are private by
default, and the setting can only be chosen when the subnet is created. Azure ML nodes need
outbound access (Microsoft Entra ID, ARM, package and image pulls), so the compute subnet
sets ``defaultOutboundAccess`` explicitly, or routes through a NAT gateway.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.graph import COMPUTE, ResourceGraph
from policies.violation import Violation

NUMBER = 10
ID = "azure-10-compute-outbound"
TITLE = "Computes without public IPs: explicit default outbound access or a NAT gateway"
SOURCE = "Azure VNet docs: default outbound access (private subnets from API 2025-07-01)"
UNVERIFIED = False


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for compute in graph.of_type(COMPUTE):
        inner = compute.get("properties", "properties")
        if not isinstance(inner, Mapping) or inner.get("enableNodePublicIp") is not False:
            continue
        subnet = graph.find_subnet(inner.get("subnet"))
        if subnet is None or subnet.node is None:
            continue
        node = subnet.node
        if node.get("natGateway") is not None or node.get("defaultOutboundAccess") is True:
            continue
        found.append(
            Violation.at(
                ID,
                node,
                f"holds compute '{compute.arm_name}' (no public IPs) but sets neither "
                f"defaultOutboundAccess=true ({node.get('defaultOutboundAccess')!r}) nor a NAT "
                "gateway; its nodes could not reach Entra ID, ARM or package indexes.",
                "Set defaultOutboundAccess=true when creating the subnet, or attach a NAT "
                "gateway (fl-sandbox:computeOutbound: nat-gateway).",
            )
        )
    return found
