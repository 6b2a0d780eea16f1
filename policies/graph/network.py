"""The network as declared: VNets, subnets, private endpoints, DNS zones, links, peerings.

Indexes only; what can reach what is decided in ``policies.network_paths``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from components.vocabulary.arm_types import (
    AGENT_POOL,
    CONNECTED_CLUSTER,
    DYNAMIC_RESOURCE,
    K8S_EXTENSION,
    MANAGED_CLUSTER,
    PRIVATE_DNS_LINK,
    PRIVATE_DNS_ZONE,
    PRIVATE_DNS_ZONE_GROUP,
    PRIVATE_ENDPOINT,
    SUBNET,
    VIRTUAL_NETWORK,
    VNET_PEERING,
)
from policies.graph.core import GraphCore, Node, normalize_id, silo_of

CLUSTER_TYPES = (MANAGED_CLUSTER, CONNECTED_CLUSTER)


@dataclass(frozen=True)
class SubnetInfo:
    """A subnet with the VNet (and silo) it belongs to."""

    name: str
    vnet: Node
    address_prefixes: tuple[str, ...]
    node: Node | None
    ids: frozenset[str]

    @property
    def silo(self) -> str | None:
        return silo_of(self.vnet)


def connections(endpoint: Node) -> list[Mapping[str, Any]]:
    """A private endpoint's private-link connections (automatic and manual)."""
    found = list(endpoint.get("privateLinkServiceConnections") or [])
    found += list(endpoint.get("manualPrivateLinkServiceConnections") or [])
    return [c for c in found if isinstance(c, Mapping)]


def _prefixes(props: Mapping[str, Any]) -> tuple[str, ...]:
    values: list[str] = []
    if isinstance(props.get("addressPrefix"), str):
        values.append(props["addressPrefix"])
    values += [p for p in props.get("addressPrefixes") or [] if isinstance(p, str)]
    return tuple(values)


class NetworkMixin(GraphCore):
    """Subnets, private endpoints and the DNS records and links that make them resolve."""

    @cached_property
    def subnets(self) -> list[SubnetInfo]:
        """Subnets declared as resources or inline in their VNet."""
        found: list[SubnetInfo] = []
        for vnet in self.of_type(VIRTUAL_NETWORK):
            for inline in vnet.get("subnets") or []:
                if not isinstance(inline, Mapping) or not isinstance(inline.get("name"), str):
                    continue
                ids = {f"{vid}/subnets/{inline['name']}".lower() for vid in vnet.ids}
                if isinstance(inline.get("id"), str):
                    ids.add(normalize_id(inline["id"]))
                found.append(
                    SubnetInfo(inline["name"], vnet, _prefixes(inline), None, frozenset(ids))
                )
        for node in self.of_type(SUBNET):
            parent = self._vnet_of_subnet(node)
            if parent is None:
                continue
            ids = set(node.ids) | {f"{vid}/subnets/{node.arm_name}".lower() for vid in parent.ids}
            found.append(
                SubnetInfo(node.arm_name, parent, _prefixes(node.props), node, frozenset(ids))
            )
        return found

    @cached_property
    def _subnet_by_id(self) -> dict[str, SubnetInfo]:
        return {arm_id: subnet for subnet in self.subnets for arm_id in subnet.ids}

    def _vnet_of_subnet(self, subnet: Node) -> Node | None:
        vnet_name = subnet.get("virtualNetworkName")
        for vnet in self.of_type(VIRTUAL_NETWORK):
            same_rg = (vnet.resource_group or "").lower() == (subnet.resource_group or "").lower()
            same_name = isinstance(vnet_name, str) and vnet.arm_name.lower() == vnet_name.lower()
            if same_name and same_rg:
                return vnet
        parent = self.by_urn.get(subnet.parent or "")
        return parent if parent is not None and parent.type == VIRTUAL_NETWORK else None

    def find_subnet(self, subnet_id: Any) -> SubnetInfo | None:
        if isinstance(subnet_id, Mapping):
            subnet_id = subnet_id.get("id")
        if not isinstance(subnet_id, str) or not subnet_id:
            return None
        return self._subnet_by_id.get(normalize_id(subnet_id))

    # ----- private endpoints and DNS ---------------------------------------------------------
    @cached_property
    def _endpoints_by_target(self) -> dict[tuple[str, str], list[Node]]:
        index: dict[tuple[str, str], list[Node]] = {}
        for endpoint in self.of_type(PRIVATE_ENDPOINT):
            for connection in connections(endpoint):
                target = self.find(connection.get("privateLinkServiceId"))
                if target is None:
                    continue
                for group in connection.get("groupIds") or []:
                    index.setdefault((target.urn, str(group).lower()), []).append(endpoint)
        return index

    def private_endpoints_to(self, target: Node, group: str = "blob") -> list[Node]:
        """Private endpoints whose connection targets ``target`` for ``group``."""
        return list(self._endpoints_by_target.get((target.urn, group.lower()), ()))

    def endpoint_subnet(self, endpoint: Node) -> SubnetInfo | None:
        return self.find_subnet(endpoint.get("subnet"))

    @cached_property
    def _zone_records(self) -> dict[str, set[str]]:
        """Private endpoint URN -> names (lowercased) of the zones its zone groups write."""
        index: dict[str, set[str]] = {}
        endpoints = {
            ((e.resource_group or "").lower(), e.arm_name.lower()): e
            for e in self.of_type(PRIVATE_ENDPOINT)
        }
        for group in self.of_type(PRIVATE_DNS_ZONE_GROUP):
            name = str(group.get("privateEndpointName") or "").lower()
            endpoint = endpoints.get(((group.resource_group or "").lower(), name))
            if endpoint is None:
                parent = self.by_urn.get(group.parent or "")
                endpoint = (
                    parent if parent is not None and parent.type == PRIVATE_ENDPOINT else None
                )
            if endpoint is None:
                continue
            for config in group.get("privateDnsZoneConfigs") or []:
                if not isinstance(config, Mapping):
                    continue
                zone = self.find(config.get("privateDnsZoneId"))
                zone_name = (
                    zone.arm_name
                    if zone is not None
                    else str(config.get("privateDnsZoneId") or "").rsplit("/", 1)[-1]
                )
                if zone_name:
                    index.setdefault(endpoint.urn, set()).add(zone_name.lower())
        return index

    def zones_of_endpoint(self, endpoint: Node) -> set[str]:
        """The private DNS zones (names, lowercased) an endpoint's records are written to."""
        return set(self._zone_records.get(endpoint.urn, ()))

    def zone_groups_of(self, endpoint: Node) -> list[Node]:
        """The DNS zone groups registering ``endpoint``."""
        return [
            g
            for g in self.of_type(PRIVATE_DNS_ZONE_GROUP)
            if str(g.get("privateEndpointName") or "").lower() == endpoint.arm_name.lower()
            and (g.resource_group or "").lower() == (endpoint.resource_group or "").lower()
        ]

    def zone(self, name: str) -> Node | None:
        """The private DNS zone called ``name`` (one per sandbox)."""
        for node in self.of_type(PRIVATE_DNS_ZONE):
            if node.arm_name.lower() == name.lower():
                return node
        return None

    @cached_property
    def _links(self) -> dict[str, set[str]]:
        """Zone name (lowercased) -> URNs of the VNets linked to it."""
        index: dict[str, set[str]] = {}
        for link in self.of_type(PRIVATE_DNS_LINK):
            zone = str(link.get("privateZoneName") or "").lower()
            vnet = self.find(link.get("virtualNetwork"))
            if vnet is not None and zone:
                index.setdefault(zone, set()).add(vnet.urn)
        return index

    def zone_linked(self, zone: str, vnet: Node) -> bool:
        """Whether private DNS zone ``zone`` is linked to ``vnet``."""
        return vnet.urn in self._links.get(zone.lower(), set())

    def zone_writers(self, zone: Node) -> list[Node]:
        """Every resource that writes into ``zone``: its VNet links and the zone groups that
        register endpoints in it."""
        name = zone.arm_name.lower()
        writers = [
            link
            for link in self.of_type(PRIVATE_DNS_LINK)
            if str(link.get("privateZoneName") or "").lower() == name
        ]
        for group in self.of_type(PRIVATE_DNS_ZONE_GROUP):
            for config in group.get("privateDnsZoneConfigs") or []:
                target = (
                    self.find(config.get("privateDnsZoneId"))
                    if isinstance(config, Mapping)
                    else None
                )
                if target is zone:
                    writers.append(group)
                    break
        return writers

    # ----- Kubernetes clusters attached as computes ------------------------------------------
    def cluster_of(self, compute: Node) -> Node | None:
        """The AKS or Arc-connected cluster a Kubernetes compute is attached to."""
        found = self.find(compute.get("properties", "resourceId"))
        if found is not None and found.type in (MANAGED_CLUSTER, CONNECTED_CLUSTER):
            return found
        return None

    def cluster_pools(self, cluster: Node) -> list[Mapping[str, Any]]:
        """An AKS cluster's node pools: inline profiles and separate AgentPool resources."""
        pools = [p for p in cluster.get("agentPoolProfiles") or [] if isinstance(p, Mapping)]
        for pool in self.of_type(AGENT_POOL):
            owner = str(pool.get("resourceName") or "")
            same_rg = (pool.resource_group or "").lower() == (cluster.resource_group or "").lower()
            if owner.lower() == cluster.arm_name.lower() and same_rg:
                pools.append(pool.props)
        return pools

    def extension_cluster(self, extension: Node) -> Node | None:
        """The cluster a cluster extension is installed on: from its clusterRp,
        clusterResourceName and clusterName, or, where a deployed stack no longer carries
        them (CrossGuard), the cluster its clusterName came from. None: not found."""
        rp, kind, name = (
            extension.get(k) for k in ("clusterRp", "clusterResourceName", "clusterName")
        )
        if all(isinstance(v, str) and v for v in (rp, kind, name)):
            rg = extension.resource_group or ""
            found = self.find(f"/resourceGroups/{rg}/providers/{rp}/{kind}/{name}")
            return found if found is not None and found.type in CLUSTER_TYPES else None
        for urn in extension.dependencies:
            node = self.by_urn.get(urn)
            if (
                node is not None
                and node.type in CLUSTER_TYPES
                and (not isinstance(name, str) or node.arm_name.lower() == name.lower())
            ):
                return node
        return None

    @staticmethod
    def extension_target_known(extension: Node) -> bool:
        """Whether the extension still names its cluster (a deployed stack may not)."""
        return all(
            isinstance(extension.get(k), str) and extension.get(k)
            for k in ("clusterRp", "clusterResourceName", "clusterName")
        )

    def extensions_on(self, cluster: Node) -> list[Node]:
        """Extensions on ``cluster``, and those whose cluster cannot be told (they may be)."""
        return [
            e
            for e in self.of_type(K8S_EXTENSION)
            if (found := self.extension_cluster(e)) is cluster
            or (found is None and not self.extension_target_known(e))
        ]

    def connectivity_waits(self, cluster: Node) -> list[Node]:
        """Resources that exist only once ``cluster`` reports Connected (Arc)."""
        return [
            n
            for n in self.of_type(DYNAMIC_RESOURCE)
            if isinstance(n.get("cluster_id"), str)
            and normalize_id(n.get("cluster_id")) in cluster.ids
        ]

    def cluster_subnets(self, cluster: Node) -> list[SubnetInfo | None]:
        """The subnet of each of an AKS cluster's pools (None: not in this sandbox)."""
        return [
            self.find_subnet(p.get("vnetSubnetID") or p.get("vnetSubnetId"))
            for p in self.cluster_pools(cluster)
        ]

    # ----- peerings -------------------------------------------------------------------------
    @cached_property
    def _peerings(self) -> set[tuple[str, str]]:
        """(local VNet URN, remote VNet URN) for every peering that allows traffic."""
        found: set[tuple[str, str]] = set()
        for peering in self.of_type(VNET_PEERING):
            if peering.get("allowVirtualNetworkAccess") is False:
                continue
            remote = self.find(peering.get("remoteVirtualNetwork"))
            local_name = str(peering.get("virtualNetworkName") or "").lower()
            local = next(
                (
                    v
                    for v in self.of_type(VIRTUAL_NETWORK)
                    if v.arm_name.lower() == local_name
                    and (v.resource_group or "").lower() == (peering.resource_group or "").lower()
                ),
                None,
            )
            if local is not None and remote is not None:
                found.add((local.urn, remote.urn))
        return found

    def peered(self, a: Node, b: Node) -> bool:
        """Whether VNets ``a`` and ``b`` are peered in both directions (traffic flows)."""
        return (a.urn, b.urn) in self._peerings and (b.urn, a.urn) in self._peerings
