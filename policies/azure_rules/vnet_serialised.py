"""Rule 42: changes to one VNet (its subnets, its private endpoints, its peerings) happen one
at a time.

Source: Azure's own conflict error on concurrent operations on one virtual network
("AnotherOperationInProgress: Another operation on this or dependent resource is in
progress", Microsoft Learn, "Troubleshoot common Azure deployment errors"; the azurerm and
Bicep issue trackers have it for peerings created while subnets or private endpoints of the
same VNet are still being created, e.g. hashicorp/terraform-provider-azurerm#2605). Creating a
private endpoint updates its subnet, and a peering updates the VNet, so every subnet, endpoint
and peering of one VNet must wait for the one before it: the writers form one chain. The
sandbox chains the silo side as subnets -> peering to the hub -> endpoints, and the hub side
as the hub's endpoints -> each silo's hub-side peering -> the jump host's subnets.
"""

from __future__ import annotations

import itertools

from components.vocabulary.arm_types import PRIVATE_ENDPOINT, SUBNET, VNET_PEERING
from policies.graph import VIRTUAL_NETWORK, Node, ResourceGraph
from policies.violation import Violation

NUMBER = 42
ID = "azure-42-vnet-changes-serialised"
TITLE = "Subnets, private endpoints and peerings of one VNet are created one after another"
SOURCE = (
    "Azure error AnotherOperationInProgress on concurrent VNet operations (Troubleshoot common "
    "Azure deployment errors); terraform-provider-azurerm#2605"
)
UNVERIFIED = True


def _vnet_of_peering(graph: ResourceGraph, peering: Node) -> Node | None:
    name = str(peering.get("virtualNetworkName") or "").lower()
    for vnet in graph.of_type(VIRTUAL_NETWORK):
        same_rg = (vnet.resource_group or "").lower() == (peering.resource_group or "").lower()
        if vnet.arm_name.lower() == name and same_rg:
            return vnet
    return None


def writers(graph: ResourceGraph) -> dict[str, list[Node]]:
    """Each VNet's (by urn) subnets, private endpoints and peerings."""
    found: dict[str, list[Node]] = {}
    for subnet in graph.subnets:
        if subnet.node is not None:
            found.setdefault(subnet.vnet.urn, []).append(subnet.node)
    for endpoint in graph.of_type(PRIVATE_ENDPOINT):
        info = graph.find_subnet(endpoint.get("subnet"))
        if info is not None:
            found.setdefault(info.vnet.urn, []).append(endpoint)
    for peering in graph.of_type(VNET_PEERING):
        vnet = _vnet_of_peering(graph, peering)
        if vnet is not None:
            found.setdefault(vnet.urn, []).append(peering)
    return found


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for vnet_urn, nodes in writers(graph).items():
        vnet = graph.by_urn[vnet_urn]
        ranked = sorted(nodes, key=lambda w: sum(1 for o in nodes if graph.waits_for(w, o)))
        for before, after in itertools.pairwise(ranked):
            if not graph.waits_for(after, before):
                kind = {SUBNET: "subnet", PRIVATE_ENDPOINT: "private endpoint"}.get(
                    after.type, "peering"
                )
                found.append(
                    Violation.at(
                        ID,
                        after,
                        f"({kind}) changes VNet {vnet.arm_name} concurrently with "
                        f"'{before.name}'; Azure refuses parallel operations on one VNet.",
                        "Make each subnet, private endpoint and peering of the VNet depend on "
                        "the previous one.",
                    )
                )
    return found
