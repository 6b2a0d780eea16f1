"""Rule 44: an NSG on a subnet of private endpoints applies only with network policies on.

Source: Microsoft Learn, "Manage network policies for private endpoints"
(https://learn.microsoft.com/azure/private-link/disable-private-endpoint-network-policy):
"By default, network policies are disabled for a subnet in a virtual network. To use network
policies like user-defined routes and network security group support, network policy support
must be enabled for the subnet. This setting only applies to private endpoints in the
subnet." A subnet that holds private endpoints and carries an NSG while
``privateEndpointNetworkPolicies`` is ``Disabled`` looks guarded and is not: the endpoints
admit every source the VNet routes to them (a silo's data endpoint, the whole hub).

Where the NSG is on, Azure must also support it in the VNet's region. Microsoft Learn, "What is
a private endpoint?", Limitations, Network security group
(https://learn.microsoft.com/azure/private-link/private-endpoint-overview#limitations):
"Feature unavailable in select regions. Currently unavailable in the following regions: West
India, Australia Central 2, South Africa West, Brazil Southeast, All Government regions, All
China regions". There the endpoints subnet's NSG guards nothing, so a silo whose isolation
rests on it is refused (the spec accepts only public-cloud regions, so the list names those).
"""

from __future__ import annotations

from components.vocabulary.arm_types import PRIVATE_ENDPOINT
from policies.graph import ResourceGraph
from policies.nsg_egress import subnet_nsg
from policies.violation import Violation

NUMBER = 44
ID = "azure-44-endpoint-nsg"
TITLE = "A private endpoints subnet with an NSG enables network policies, or the NSG does nothing"
SOURCE = (
    "Private Link docs: manage network policies for private endpoints "
    "(https://learn.microsoft.com/azure/private-link/disable-private-endpoint-network-policy)"
)
UNVERIFIED = False

ENFORCED = ("enabled", "networksecuritygroupenabled")

#: Public-cloud regions where an NSG does not apply to private endpoints (Learn, above).
NO_ENDPOINT_NSG_REGIONS = frozenset(
    {"westindia", "australiacentral2", "southafricawest", "brazilsoutheast"}
)


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    seen: set[str] = set()
    for endpoint in graph.of_type(PRIVATE_ENDPOINT):
        subnet = graph.endpoint_subnet(endpoint)
        if subnet is None or subnet.node is None or subnet.node.urn in seen:
            continue
        seen.add(subnet.node.urn)
        nsg = subnet_nsg(graph, subnet)
        policies = str(subnet.node.get("privateEndpointNetworkPolicies") or "Disabled")
        if nsg is None:
            continue
        region = str(subnet.vnet.get("location") or "").lower().replace(" ", "")
        if policies.lower() in ENFORCED:
            if region in NO_ENDPOINT_NSG_REGIONS:
                found.append(
                    Violation.at(
                        ID,
                        subnet.node,
                        f"holds private endpoints (e.g. '{endpoint.arm_name}') guarded by NSG "
                        f"'{nsg.arm_name}', but Azure does not apply NSGs to private endpoints "
                        f"in {region}: every source the VNet routes reaches them.",
                        "Put this VNet (the silo) in a region where NSGs apply to private "
                        "endpoints (not West India, Australia Central 2, South Africa West or "
                        "Brazil Southeast).",
                    )
                )
            continue
        found.append(
            Violation.at(
                ID,
                subnet.node,
                f"holds private endpoints (e.g. '{endpoint.arm_name}') and NSG "
                f"'{nsg.arm_name}', but privateEndpointNetworkPolicies is {policies!r}: the "
                "NSG's rules do not apply to the endpoints.",
                "Set private_endpoint_network_policies='NetworkSecurityGroupEnabled' on the "
                "subnet.",
            )
        )
    return found
