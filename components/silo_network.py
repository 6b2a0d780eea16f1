"""A federation member's network: VNet, AML-ready NSG, private endpoints, DNS links, peering.

Used for every silo and, with no hub to peer with, for the orchestrator's hub VNet. Silos
peer only with the hub (peering is not transitive), so no silo can reach another silo's
network. Private endpoints land in the ``endpoints`` subnet and register in the private DNS
zones, which are linked to every VNet of the federation so names resolve to private IPs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network, privatedns

from components import naming

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


@dataclass(frozen=True)
class PrivateEndpointSpec:
    """A private endpoint for one sub-resource (``blob``, ``file``) of one resource."""

    label: str
    resource_id: pulumi.Input[str]
    group_id: str
    zone: str


@dataclass(frozen=True)
class SiloNetworkArgs:
    base_name: str
    label: str
    """Silo name, or ``hub`` for the orchestrator."""
    resource_group_name: pulumi.Input[str]
    location: str
    address_space: str
    tags: Mapping[str, str]
    hub: HubRef | None = None
    dns_zones: Mapping[str, privatedns.PrivateZone] = field(default_factory=dict)
    """Private DNS zones by name, all in the orchestrator resource group."""
    dns_resource_group_name: pulumi.Input[str] | None = None
    private_endpoints: Sequence[PrivateEndpointSpec] = ()
    hub_after: Sequence[pulumi.Resource] = ()
    """Changes to the hub VNet to wait for: Azure refuses concurrent operations on one VNet,
    so the builder chains every silo's hub-side peering after the previous one."""


class SiloNetwork(pulumi.ComponentResource):
    """VNet with ``compute`` and ``endpoints`` subnets, NSG, endpoints, DNS links, peering."""

    vnet: network.VirtualNetwork
    compute_subnet: network.Subnet
    endpoints_subnet: network.Subnet
    hub_peering: network.VirtualNetworkPeering | None
    """The peering on the hub's side (the last change this network makes to the hub VNet)."""

    def __init__(
        self, name: str, args: SiloNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fl-sandbox:infra:SiloNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
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
            address_space={"address_prefixes": [args.address_space]},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        self.compute_subnet = network.Subnet(
            f"{name}-compute",
            subnet_name=COMPUTE_SUBNET,
            virtual_network_name=self.vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=compute_range,
            network_security_group={"id": nsg.id},
            opts=child,
        )
        self.endpoints_subnet = network.Subnet(
            f"{name}-endpoints",
            subnet_name=ENDPOINTS_SUBNET,
            virtual_network_name=self.vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=endpoints_range,
            private_endpoint_network_policies="Disabled",
            # Subnets of one VNet cannot be changed concurrently.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.compute_subnet]),
        )

        for zone_name, zone in args.dns_zones.items():
            privatedns.VirtualNetworkLink(
                f"{name}-link-{zone_name.split('.')[1]}",
                virtual_network_link_name=naming.network("link", args.base_name, args.label),
                private_zone_name=zone.name,
                resource_group_name=args.dns_resource_group_name,
                location="global",
                virtual_network={"id": self.vnet.id},
                registration_enabled=False,
                tags=tags,
                opts=child,
            )

        previous_endpoint: list[pulumi.Resource] = []
        for endpoint in args.private_endpoints:
            pe_name = naming.network("pe", args.base_name, f"{endpoint.label}-{endpoint.group_id}")
            pe = network.PrivateEndpoint(
                f"{name}-pe-{endpoint.label}-{endpoint.group_id}",
                private_endpoint_name=pe_name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                subnet={"id": self.endpoints_subnet.id},
                private_link_service_connections=[
                    {
                        "name": pe_name,
                        "private_link_service_id": endpoint.resource_id,
                        "group_ids": [endpoint.group_id],
                    }
                ],
                tags=tags,
                # One endpoint at a time in a subnet, like every change to one VNet.
                opts=pulumi.ResourceOptions(parent=self, depends_on=previous_endpoint),
            )
            previous_endpoint = [pe]
            network.PrivateDnsZoneGroup(
                f"{name}-dns-{endpoint.label}-{endpoint.group_id}",
                private_dns_zone_group_name="default",
                private_endpoint_name=pe.name,
                resource_group_name=args.resource_group_name,
                private_dns_zone_configs=[
                    {
                        "name": endpoint.zone.replace(".", "-"),
                        "private_dns_zone_id": args.dns_zones[endpoint.zone].id,
                    }
                ],
                opts=child,
            )

        self.hub_peering = None
        if args.hub is not None:
            network.VirtualNetworkPeering(
                f"{name}-to-hub",
                virtual_network_peering_name=naming.network("peer", args.label, "to-hub"),
                virtual_network_name=self.vnet.name,
                resource_group_name=args.resource_group_name,
                remote_virtual_network={"id": args.hub.vnet_id},
                allow_virtual_network_access=True,
                allow_forwarded_traffic=False,
                allow_gateway_transit=False,
                use_remote_gateways=False,
                opts=child,
            )
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
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.hub_after)),
            )

        self.register_outputs(
            {
                "vnet_id": self.vnet.id,
                "compute_subnet_id": self.compute_subnet.id,
                "endpoints_subnet_id": self.endpoints_subnet.id,
            }
        )
