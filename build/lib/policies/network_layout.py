"""The network a sandbox would create: VNets, subnets, private endpoints, peerings, DNS.

A view over the resource graph for the offline plan, so a user can see before deploying that
address spaces do not overlap, which storage is reachable through which private endpoint,
and which VNets are peered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from policies.graph import (
    PRIVATE_DNS_LINK,
    PRIVATE_DNS_ZONE,
    PRIVATE_ENDPOINT,
    VIRTUAL_NETWORK,
    VNET_PEERING,
    Node,
    ResourceGraph,
    side_of,
    silo_of,
)


def _owner(node: Node) -> str:
    silo = silo_of(node)
    return f"silo:{silo}" if silo else (side_of(node) or "untagged")


def _vnet_name(graph: ResourceGraph, ref: Any) -> str | None:
    arm_id = ref.get("id") if isinstance(ref, Mapping) else ref
    node = graph.find(arm_id)
    if node is not None:
        return node.arm_name
    return str(arm_id).rstrip("/").rsplit("/", 1)[-1] if arm_id else None


def vnets(graph: ResourceGraph) -> list[dict[str, Any]]:
    """Each VNet with its owner, region, address space and subnets."""
    subnets_by_vnet: dict[str, list[dict[str, Any]]] = {}
    for subnet in graph.subnets:
        subnets_by_vnet.setdefault(subnet.vnet.urn, []).append(
            {"name": subnet.name, "address_prefixes": list(subnet.address_prefixes)}
        )
    found = []
    for vnet in graph.of_type(VIRTUAL_NETWORK):
        space = vnet.get("addressSpace", "addressPrefixes") or []
        found.append(
            {
                "name": vnet.arm_name,
                "owner": _owner(vnet),
                "location": vnet.get("location"),
                "address_space": list(space),
                "subnets": subnets_by_vnet.get(vnet.urn, []),
            }
        )
    return found


def private_endpoints(graph: ResourceGraph) -> list[dict[str, Any]]:
    """Each private endpoint: where it sits and which storage sub-resource it exposes."""
    found = []
    for endpoint in graph.of_type(PRIVATE_ENDPOINT):
        subnet = graph.find_subnet(endpoint.get("subnet", "id"))
        connections = (endpoint.get("privateLinkServiceConnections") or []) + (
            endpoint.get("manualPrivateLinkServiceConnections") or []
        )
        for connection in connections:
            if not isinstance(connection, Mapping):
                continue
            target = graph.find(connection.get("privateLinkServiceId"))
            found.append(
                {
                    "name": endpoint.arm_name,
                    "owner": _owner(endpoint),
                    "subnet": f"{subnet.vnet.arm_name}/{subnet.name}" if subnet else None,
                    "target": target.arm_name if target else connection.get("privateLinkServiceId"),
                    "groups": list(connection.get("groupIds") or []),
                }
            )
    return found


def peerings(graph: ResourceGraph) -> list[dict[str, Any]]:
    """Each VNet peering, local VNet -> remote VNet."""
    return [
        {
            "name": peering.arm_name,
            "from": peering.get("virtualNetworkName"),
            "to": _vnet_name(graph, peering.get("remoteVirtualNetwork")),
            "allow_forwarded_traffic": peering.get("allowForwardedTraffic"),
        }
        for peering in graph.of_type(VNET_PEERING)
    ]


def dns_zones(graph: ResourceGraph) -> list[dict[str, Any]]:
    """Each private DNS zone with the VNets it is linked to."""
    links: dict[str, list[str]] = {}
    for link in graph.of_type(PRIVATE_DNS_LINK):
        zone = str(link.get("privateZoneName") or "")
        name = _vnet_name(graph, link.get("virtualNetwork"))
        if name:
            links.setdefault(zone, []).append(name)
    return [
        {"zone": zone.arm_name, "linked_vnets": links.get(zone.arm_name, [])}
        for zone in graph.of_type(PRIVATE_DNS_ZONE)
    ]


def overlapping_address_spaces(layout: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of VNets whose address spaces overlap (peered VNets must not)."""
    nets = [
        (vnet["name"], ipaddress.ip_network(prefix, strict=False))
        for vnet in layout
        for prefix in vnet["address_space"]
    ]
    return [
        (a, b)
        for i, (a, net_a) in enumerate(nets)
        for b, net_b in nets[i + 1 :]
        if a != b and net_a.overlaps(net_b)
    ]


def network_layout(graph: ResourceGraph) -> dict[str, Any]:
    """The whole layout, JSON-ready."""
    layout = vnets(graph)
    return {
        "vnets": layout,
        "private_endpoints": private_endpoints(graph),
        "peerings": peerings(graph),
        "private_dns_zones": dns_zones(graph),
        "overlaps": [list(pair) for pair in overlapping_address_spaces(layout)],
    }
