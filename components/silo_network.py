"""A federation member's network: VNet, AML-ready NSG, outbound path, DNS links, peering.

Used for every silo and, with no hub to peer with, for the orchestrator's hub VNet. Silos
peer only with the hub (peering is not transitive), so no silo can reach another silo's
network. Private endpoints land in the ``endpoints`` subnet and register in the private DNS
zones, which are linked to every VNet of the federation so names resolve to private IPs.

A silo's ``endpoints`` subnet enforces its own NSG (``privateEndpointNetworkPolicies:
NetworkSecurityGroupEnabled``; without it an NSG does not apply to private endpoints): HTTPS to
the silo's endpoints only from its own compute subnet and the jump host's subnet (when the
stack builds one for this silo's uploaders), so the hub's computes have no network path to a
silo's data: RBAC is no longer the only wall.

The compute subnet states its outbound path explicitly (Azure's rule: subnets created with
network API 2025-07-01 or later get no default outbound access, and this one is set at
creation only), either Azure's default outbound access or a NAT gateway.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
from pulumi_azure_native import network, privatedns

from components.dns import ZoneWrites, zone_label
from components.vocabulary import naming
from components.vocabulary.posture import ZONES_BY_GROUP

COMPUTE_SUBNET = "compute"
ENDPOINTS_SUBNET = "endpoints"

# Inbound rules Azure ML compute clusters need in a customer VNet: the Batch node management
# service and the AML service reach the nodes on these ports (service tags, not the internet).
AML_INBOUND_RULES: tuple[dict[str, object], ...] = (
    {
        "name": "AllowBatchNodeManagement",
        "priority": 100,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": "Tcp",
        "source_address_prefix": "BatchNodeManagement",
        "source_port_range": "*",
        "destination_address_prefix": "*",
        "destination_port_range": "29876-29877",
    },
    {
        "name": "AllowAzureMachineLearning",
        "priority": 110,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": "Tcp",
        "source_address_prefix": "AzureMachineLearning",
        "source_port_range": "*",
        "destination_address_prefix": "*",
        "destination_port_range": "44224",
    },
)


def endpoint_rules(
    compute_range: str, endpoints_range: str, sources: Sequence[str]
) -> list[dict[str, object]]:
    """Inbound rules of a silo's ``endpoints`` subnet: HTTPS from the silo's compute subnet
    and ``sources``, nothing else from any VNet (the default ``AllowVnetInBound`` would admit
    the hub and, through it, whatever the hub hosts)."""
    rule = {
        "direction": "Inbound",
        "protocol": "Tcp",
        "source_port_range": "*",
        "destination_address_prefix": endpoints_range,
        "destination_port_range": "443",
    }
    rules: list[dict[str, object]] = [
        {
            **rule,
            "name": "AllowSiloCompute",
            "priority": 100,
            "access": "Allow",
            "source_address_prefix": compute_range,
        }
    ]
    if sources:
        rules.append(
            {
                **rule,
                "name": "AllowUploadRoute",
                "priority": 110,
                "access": "Allow",
                "source_address_prefixes": list(sources),
            }
        )
    rules.append(
        {
            **rule,
            "name": "DenyOtherVnetInbound",
            "priority": 4000,
            "access": "Deny",
            "protocol": "*",
            "source_address_prefix": "VirtualNetwork",
            "destination_address_prefix": "*",
            "destination_port_range": "*",
        }
    )
    return rules


def split_address_space(cidr: str) -> tuple[str, str]:
    """The ``compute`` and ``endpoints`` subnets: the two halves of the VNet's range."""
    compute, endpoints = ipaddress.ip_network(cidr).subnets(prefixlen_diff=1)
    return str(compute), str(endpoints)


@dataclass(frozen=True)
class HubRef:
    """The orchestrator's VNet, which every silo VNet peers with."""

    vnet_id: pulumi.Input[str]
    vnet_name: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    address_prefixes: Sequence[str] = ()
    """The hub VNet's ranges (its own, then the jump host's): a silo's peering records them,
    so that a range added later changes the peering and Pulumi syncs it (rule 45)."""


@dataclass(frozen=True)
class PrivateEndpointSpec:
    """A private endpoint for one sub-resource (``blob``, ``file``, ``amlworkspace``,
    ``vault``, ``registry``) of one resource; its DNS zones follow from the group."""

    label: str
    resource_id: pulumi.Input[str]
    group_id: str

    @property
    def zones(self) -> tuple[str, ...]:
        return ZONES_BY_GROUP[self.group_id]


Outbound = Literal["default", "nat-gateway"]


@dataclass(frozen=True)
class SiloNetworkArgs:
    base_name: str
    label: str
    """Silo name, or ``hub`` for the orchestrator."""
    resource_group_name: pulumi.Input[str]
    location: str
    address_space: str
    tags: Mapping[str, str]
    zone_writes: ZoneWrites
    """The sandbox's private DNS zones (this VNet links to every one) and their writers."""
    outbound: Outbound = "default"
    """How computes without public IPs reach the internet (package and image pulls, Entra
    ID, ARM): Azure's default outbound access set explicitly on the compute subnet, or a NAT
    gateway with its own static public IP."""
    hub: HubRef | None = None
    extra_address_prefixes: Sequence[str] = ()
    """More ranges of this VNet (the hub's jump-host range, ``components.jump_host``)."""
    hub_after: Sequence[pulumi.Resource] = ()
    """Changes to the hub VNet to wait for: Azure refuses concurrent operations on one VNet,
    so the builder chains every silo's hub-side peering after the previous one."""
    endpoint_sources: Sequence[str] = ()
    """Ranges outside this VNet admitted to a silo's private endpoints (its uploaders'
    route); the silo's own compute subnet always is, everything else in any VNet is not."""


class SiloNetwork(pulumi.ComponentResource):
    """VNet with ``compute`` and ``endpoints`` subnets, NSG, outbound path, DNS links,
    peering; private endpoints are added by the resources' owners (``private_endpoint``)."""

    vnet: network.VirtualNetwork
    compute_subnet: network.Subnet
    endpoints_subnet: network.Subnet
    hub_peering: network.VirtualNetworkPeering | None
    """The peering on the hub's side (the last change this network makes to the hub VNet)."""
    dns_links: dict[str, privatedns.VirtualNetworkLink]

    def __init__(
        self, name: str, args: SiloNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fl-sandbox:infra:SiloNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._name = name
        self._args = args
        self._last_endpoint: list[pulumi.Resource] = []
        tags = dict(args.tags)
        compute_range, endpoints_range = split_address_space(args.address_space)

        nsg = network.NetworkSecurityGroup(
            f"{name}-nsg",
            network_security_group_name=naming.network("nsg", args.base_name, args.label),
            resource_group_name=args.resource_group_name,
            location=args.location,
            security_rules=[dict(rule) for rule in AML_INBOUND_RULES],
            tags=tags,
            opts=child,
        )
        self.vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=naming.network("vnet", args.base_name, args.label),
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space={"address_prefixes": [args.address_space, *args.extra_address_prefixes]},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        outbound: dict[str, object] = {"default_outbound_access": True}
        #: The NAT gateway of the compute subnet, when outbound is "nat-gateway" (the hub's
        #: other subnets that need the internet, e.g. the jump host's, share it).
        self.nat_gateway_id: pulumi.Output[str] | None = None
        if args.outbound == "nat-gateway":
            ip = network.PublicIPAddress(
                f"{name}-nat-ip",
                public_ip_address_name=naming.network("pip", args.base_name, f"{args.label}-nat"),
                resource_group_name=args.resource_group_name,
                location=args.location,
                sku={"name": "Standard", "tier": "Regional"},
                public_ip_allocation_method="Static",
                tags=tags,
                opts=child,
            )
            nat = network.NatGateway(
                f"{name}-nat",
                nat_gateway_name=naming.network("nat", args.base_name, args.label),
                resource_group_name=args.resource_group_name,
                location=args.location,
                sku={"name": "Standard"},
                public_ip_addresses=[{"id": ip.id}],
                idle_timeout_in_minutes=4,
                tags=tags,
                opts=child,
            )
            outbound = {"default_outbound_access": False, "nat_gateway": {"id": nat.id}}
            self.nat_gateway_id = nat.id
        self.compute_subnet = network.Subnet(
            f"{name}-compute",
            subnet_name=COMPUTE_SUBNET,
            virtual_network_name=self.vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=compute_range,
            network_security_group={"id": nsg.id},
            opts=child,
            **outbound,
        )
        guarded: dict[str, object] = {"private_endpoint_network_policies": "Disabled"}
        if args.hub is not None:
            endpoints_nsg = network.NetworkSecurityGroup(
                f"{name}-endpoints-nsg",
                network_security_group_name=naming.network(
                    "nsg", args.base_name, f"{args.label}-pe"
                ),
                resource_group_name=args.resource_group_name,
                location=args.location,
                security_rules=endpoint_rules(
                    compute_range, endpoints_range, args.endpoint_sources
                ),
                tags=tags,
                opts=child,
            )
            guarded = {
                "private_endpoint_network_policies": "NetworkSecurityGroupEnabled",
                "network_security_group": {"id": endpoints_nsg.id},
            }
        self.endpoints_subnet = network.Subnet(
            f"{name}-endpoints",
            subnet_name=ENDPOINTS_SUBNET,
            virtual_network_name=self.vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=endpoints_range,
            **guarded,
            default_outbound_access=False,  # only private endpoints live here
            # Subnets of one VNet cannot be changed concurrently.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.compute_subnet]),
        )

        writes = args.zone_writes
        self.dns_links = {}
        for zone_name, zone in writes.zones.items():
            link = privatedns.VirtualNetworkLink(
                f"{name}-link-{zone_label(zone_name)}",
                virtual_network_link_name=naming.network("link", args.base_name, args.label),
                private_zone_name=zone.name,
                resource_group_name=writes.resource_group_name,
                location="global",
                virtual_network={"id": self.vnet.id},
                registration_enabled=False,
                # Names the zone lacks (Microsoft-owned endpoints elsewhere) resolve publicly
                # instead of NXDOMAIN (Azure's rule 29).
                resolution_policy="NxDomainRedirect",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=writes.after([zone_name])),
            )
            writes.wrote([zone_name], link)
            self.dns_links[zone_name] = link

        self.hub_peering = None
        if args.hub is not None:
            # One VNet, one change at a time (Azure's rule 42): subnets, then this peering,
            # then the private endpoints its owners add (they chain after _last_endpoint).
            to_hub = network.VirtualNetworkPeering(
                f"{name}-to-hub",
                virtual_network_peering_name=naming.network("peer", args.label, "to-hub"),
                virtual_network_name=self.vnet.name,
                resource_group_name=args.resource_group_name,
                remote_virtual_network={"id": args.hub.vnet_id},
                allow_virtual_network_access=True,
                allow_forwarded_traffic=False,
                allow_gateway_transit=False,
                use_remote_gateways=False,
                # After a range is added to the hub (the jump host on a deployed stack), the
                # peering must be synced or the silo never routes to it (Learn, "Update the
                # address space for a peered virtual network"). The hub's ranges as an input
                # make that change update the peering, and the update syncs it.
                remote_virtual_network_address_space={
                    "address_prefixes": list(args.hub.address_prefixes)
                },
                sync_remote_address_space="true",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.endpoints_subnet]),
            )
            self._last_endpoint = [to_hub]
            self.hub_peering = network.VirtualNetworkPeering(
                f"{name}-from-hub",
                virtual_network_peering_name=naming.network("peer", "hub-to", args.label),
                virtual_network_name=args.hub.vnet_name,
                resource_group_name=args.hub.resource_group_name,
                remote_virtual_network={"id": self.vnet.id},
                allow_virtual_network_access=True,
                allow_forwarded_traffic=False,
                allow_gateway_transit=False,
                use_remote_gateways=False,
                remote_virtual_network_address_space={
                    "address_prefixes": [args.address_space, *args.extra_address_prefixes]
                },
                sync_remote_address_space="true",
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.hub_after)),
            )

        self.register_outputs(
            {
                "vnet_id": self.vnet.id,
                "compute_subnet_id": self.compute_subnet.id,
                "endpoints_subnet_id": self.endpoints_subnet.id,
            }
        )

    @property
    def last_change(self) -> pulumi.Resource:
        """The latest change to this VNet so far (its last private endpoint, its peering or its
        endpoints subnet): the next change to it waits for this one."""
        return self._last_endpoint[-1] if self._last_endpoint else self.endpoints_subnet

    def private_endpoint(
        self, spec: PrivateEndpointSpec
    ) -> tuple[network.PrivateEndpoint, network.PrivateDnsZoneGroup]:
        """A private endpoint in this network's ``endpoints`` subnet and the DNS zone group
        that registers it. Endpoints in one subnet are created one after another (like every
        change to one VNet); the zone group is one more serialised write to its zones."""
        args = self._args
        tags = dict(args.tags)
        label = f"{spec.label}-{spec.group_id}"
        pe_name = naming.network("pe", args.base_name, label)
        endpoint = network.PrivateEndpoint(
            f"{self._name}-pe-{label}",
            private_endpoint_name=pe_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet={"id": self.endpoints_subnet.id},
            private_link_service_connections=[
                {
                    "name": pe_name,
                    "private_link_service_id": spec.resource_id,
                    "group_ids": [spec.group_id],
                }
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._last_endpoint),
        )
        self._last_endpoint = [endpoint]
        writes = args.zone_writes
        missing = [zone for zone in spec.zones if zone not in writes.zones]
        if missing:
            raise ValueError(f"private endpoint {pe_name}: the sandbox has no zone {missing[0]}")
        zone_group = network.PrivateDnsZoneGroup(
            f"{self._name}-dns-{label}",
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=args.resource_group_name,
            private_dns_zone_configs=[
                {"name": zone.replace(".", "-"), "private_dns_zone_id": writes.zones[zone].id}
                for zone in spec.zones
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=writes.after(spec.zones)),
        )
        writes.wrote(spec.zones, zone_group)
        return endpoint, zone_group
