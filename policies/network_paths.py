"""Can an actor reach a resource over the network? Decided from the declared graph.

An actor's traffic starts in a VNet (a compute in a subnet, or a submitter on the hub
network), on the internet (a submitter's laptop or CI runner, from known IP ranges), or in
Azure's managed network (a compute without a subnet, Azure ML's serverless image build).

A name resolves to a private endpoint when the endpoint's DNS zone group writes its record
into the private DNS zone and that zone is linked to the actor's VNet; the endpoint must then
sit in that VNet or a peered one. Otherwise the name resolves to the public endpoint, which
the actor reaches only with an outbound path and only if the resource's network rules admit
it (public network access on; default action Allow, or an IP rule covering the actor).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from components.vocabulary.arm_types import (
    CONTAINER_REGISTRY,
    KEY_VAULT,
    MANAGED_CLUSTER,
    STORAGE_ACCOUNT,
    WORKSPACE,
)
from components.vocabulary.conventions import ROLE_ORCHESTRATOR
from components.vocabulary.posture import ZONES_BY_GROUP
from policies.graph import (
    COMPUTE,
    VIRTUAL_NETWORK,
    Node,
    ResourceGraph,
    SubnetInfo,
    side_of,
    silo_of,
)
from policies.nsg_egress import Egress, inbound_from, subnet_nsg

OriginKind = Literal["vnet", "internet", "azure"]


@dataclass(frozen=True)
class Origin:
    """Where an actor's traffic starts."""

    kind: OriginKind
    label: str
    vnet: Node | None = None
    outbound: bool = True
    """Whether it can reach public endpoints at all."""
    outbound_problem: str = ""
    ip_ranges: tuple[str, ...] = ()
    """Known source addresses (internet origins)."""
    source_prefix: str | None = None
    """The range a VNet origin's traffic comes from (its subnet's), which the inbound NSG of
    a private endpoint's subnet is checked against; None: somewhere in ``vnet``."""


@dataclass(frozen=True)
class Path:
    """The route an actor's traffic takes to a target, or why there is none."""

    ok: bool
    route: str
    problem: str = ""
    fix: str = ""
    blocker: Node | None = None
    """The resource whose settings decide a failure (to name it in the report)."""


def hub_vnet(graph: ResourceGraph) -> Node | None:
    """The orchestrator's VNet (tagged orchestrator, not a silo's)."""
    for vnet in graph.of_type(VIRTUAL_NETWORK):
        if side_of(vnet) == ROLE_ORCHESTRATOR and silo_of(vnet) is None:
            return vnet
    return None


def _cluster_origin(graph: ResourceGraph, compute: Node) -> Origin:
    """A Kubernetes compute: an AKS cluster's first pool's VNet (AKS nodes have an outbound
    load balancer), or an on-premises cluster on the internet, from the addresses the stack
    lists for it (``on_premises`` output)."""
    cluster = graph.cluster_of(compute)
    if cluster is not None and cluster.type == MANAGED_CLUSTER:
        subnets = [s for s in graph.cluster_subnets(cluster) if s is not None]
        if subnets:
            label = f"compute '{compute.arm_name}' (AKS) in VNet '{subnets[0].vnet.arm_name}'"
            return Origin(
                "vnet", label, subnets[0].vnet, outbound=True, source_prefix=_prefix(subnets[0])
            )
        return Origin("azure", f"compute '{compute.arm_name}' (AKS, no subnet)")
    silo = silo_of(compute)
    site = (graph.outputs.get("on_premises") or {}).get(silo or "", {})
    ranges = tuple(site.get("egress_ip_ranges") or ()) if isinstance(site, Mapping) else ()
    where = f"the site's network ({', '.join(ranges)})" if ranges else "the site's network"
    return Origin(
        "internet", f"compute '{compute.arm_name}' (on premises) from {where}", ip_ranges=ranges
    )


def compute_origin(graph: ResourceGraph, compute: Node) -> Origin:
    """Where a compute's nodes send traffic from, and whether they have an outbound path."""
    if compute.get("properties", "computeType") == "Kubernetes":
        return _cluster_origin(graph, compute)
    inner = compute.get("properties", "properties") or {}
    inner = inner if isinstance(inner, Mapping) else {}
    subnet = graph.find_subnet(inner.get("subnet"))
    public_ip = inner.get("enableNodePublicIp") is not False
    if subnet is None:
        return Origin("azure", f"compute '{compute.arm_name}' (Azure-managed network)")
    label = f"compute '{compute.arm_name}' in VNet '{subnet.vnet.arm_name}'"
    source = _prefix(subnet)
    if public_ip:
        return Origin("vnet", label, subnet.vnet, outbound=True, source_prefix=source)
    node = subnet.node
    nat = node is not None and node.get("natGateway") is not None
    default_outbound = node is not None and node.get("defaultOutboundAccess") is True
    if nat or default_outbound:
        return Origin("vnet", label, subnet.vnet, outbound=True, source_prefix=source)
    return Origin(
        "vnet",
        label,
        subnet.vnet,
        source_prefix=source,
        outbound=False,
        outbound_problem=(
            f"its subnet '{subnet.name}' neither sets defaultOutboundAccess=true nor has a NAT "
            "gateway, and its nodes have no public IP"
        ),
    )


def _prefix(subnet: SubnetInfo) -> str | None:
    return subnet.address_prefixes[0] if subnet.address_prefixes else None


def submitter_origin(graph: ResourceGraph, network: str, ip_ranges: Sequence[str]) -> Origin:
    """A submitter on the internet (from ``ip_ranges``) or on the hub network (a host whose
    address the stack does not know; the job path narrows it to the jump host's subnet where
    the stack builds one)."""
    if network == "hub":
        hub = hub_vnet(graph)
        if hub is not None:
            return Origin("vnet", f"the hub network ({hub.arm_name})", hub, outbound=True)
    ranges = tuple(ip_ranges)
    where = f"the internet ({', '.join(ranges)})" if ranges else "the internet (any address)"
    return Origin("internet", where, ip_ranges=ranges)


def _covered(ranges: Sequence[str], rules: Sequence[str]) -> list[str]:
    """Ranges not inside any rule (empty: all admitted)."""
    nets = []
    for rule in rules:
        try:
            nets.append(ipaddress.ip_network(rule, strict=False))
        except ValueError:
            continue
    missing = []
    for text in ranges:
        try:
            wanted = ipaddress.ip_network(text, strict=False)
        except ValueError:
            missing.append(text)
            continue
        if not any(
            wanted.version == net.version and wanted.subnet_of(net)  # type: ignore[arg-type]
            for net in nets
        ):
            missing.append(text)
    return missing


def _rules_of(target: Node) -> tuple[str, str, list[str]]:
    """(public network access, default action, IP rules) of a target, as Azure reads them."""
    if target.type in (STORAGE_ACCOUNT, CONTAINER_REGISTRY):  # the same networkRuleSet shape
        rules = target.get("networkRuleSet") or {}
        ips = [
            r.get("iPAddressOrRange") for r in rules.get("ipRules") or [] if isinstance(r, Mapping)
        ]
        return (
            str(target.get("publicNetworkAccess") or "Enabled"),
            str(rules.get("defaultAction") or "Allow"),
            [str(i) for i in ips if i],
        )
    if target.type == KEY_VAULT:
        props = target.get("properties") or {}
        acls = props.get("networkAcls") or {}
        ips = [r.get("value") for r in acls.get("ipRules") or [] if isinstance(r, Mapping)]
        return (
            str(props.get("publicNetworkAccess") or "Enabled"),
            str(acls.get("defaultAction") or "Allow"),
            [str(i) for i in ips if i],
        )
    if target.type == WORKSPACE:
        return (str(target.get("publicNetworkAccess") or "Enabled"), "Allow", [])
    return ("Enabled", "Allow", [])


def _public(origin: Origin, target: Node, group: str) -> Path:
    if not origin.outbound:
        return Path(
            False,
            "public endpoint",
            f"{origin.label} has no outbound path: {origin.outbound_problem}",
            "Set defaultOutboundAccess=true on the compute subnet or attach a NAT gateway, or "
            f"give it a private endpoint ({group}) to {target.arm_name} with its DNS zone linked",
            blocker=target,
        )
    access, default, ips = _rules_of(target)
    if access.lower() == "disabled":
        return Path(
            False,
            "public endpoint",
            f"{target.label} refuses public network access, and from {origin.label} its name "
            "does not resolve to a private endpoint",
            _private_fix(origin, target, group),
            blocker=target,
        )
    if default.lower() == "allow":
        return Path(True, "public endpoint (open; by role)")
    if origin.kind == "internet" and origin.ip_ranges:
        missing = _covered(origin.ip_ranges, ips)
        if not missing:
            return Path(True, f"public endpoint (IP rule {', '.join(origin.ip_ranges)})")
        return Path(
            False,
            "public endpoint",
            f"{target.label} denies by default and no IP rule admits {', '.join(missing)}",
            f"Add {', '.join(missing)} to the submitter's ipRanges (the workspace storage's IP "
            "rules are built from them)",
            blocker=target,
        )
    return Path(
        False,
        "public endpoint",
        f"{target.label} denies by default and {origin.label} comes from no address its rules "
        "admit",
        _private_fix(origin, target, group),
        blocker=target,
    )


def _private_fix(origin: Origin, target: Node, group: str) -> str:
    zones = ", ".join(ZONES_BY_GROUP.get(group, ()))
    if origin.kind == "vnet" and origin.vnet is not None:
        return (
            f"Give {target.arm_name} a private endpoint (group '{group}') in a VNet peered with "
            f"'{origin.vnet.arm_name}', and link {zones} to '{origin.vnet.arm_name}'"
        )
    return (
        f"Reach {target.arm_name} from a network linked to its private endpoint, or admit "
        "this origin in its network rules"
    )


def reach(graph: ResourceGraph, origin: Origin, target: Node, group: str) -> Path:
    """How traffic from ``origin`` reaches sub-resource ``group`` of ``target``."""
    if target.read and target.get("publicNetworkAccess") is None:
        return Path(
            True,
            "not managed by fl-sandbox: its network rules are the owner's (checked with the "
            "real settings at deployment)",
        )
    zones = ZONES_BY_GROUP.get(group, ())
    if origin.kind == "vnet" and origin.vnet is not None and zones:
        vnet = origin.vnet
        registered = [
            pe
            for pe in graph.private_endpoints_to(target, group)
            if zones[0] in graph.zones_of_endpoint(pe)
        ]
        if registered and graph.zone_linked(zones[0], vnet):
            for endpoint in registered:
                subnet = graph.endpoint_subnet(endpoint)
                if subnet is None:
                    continue
                if subnet.vnet is vnet or graph.peered(vnet, subnet.vnet):
                    unlinked = [z for z in zones if not graph.zone_linked(z, vnet)]
                    if unlinked:
                        return Path(
                            False,
                            f"private endpoint '{endpoint.arm_name}'",
                            f"zone {unlinked[0]} is not linked to VNet '{vnet.arm_name}', so "
                            f"part of {target.arm_name}'s names resolve publicly",
                            f"Link {unlinked[0]} to '{vnet.arm_name}'",
                            blocker=vnet,
                        )
                    via = "" if subnet.vnet is vnet else f" via '{subnet.vnet.arm_name}'"
                    refused = _endpoint_nsg_refuses(graph, origin, subnet)
                    if refused is not None:
                        return Path(
                            False,
                            f"private endpoint '{endpoint.arm_name}'{via}",
                            f"the NSG of subnet '{subnet.name}' in VNet '{subnet.vnet.arm_name}' "
                            f"refuses HTTPS from {origin.label} "
                            f"({origin.source_prefix or 'its VNet'}; rule '{refused.rule}')",
                            f"Admit {origin.source_prefix} on TCP 443 in that NSG, or reach "
                            "it from an admitted subnet"
                            if origin.source_prefix
                            else "Set fl-sandbox:jumpHost: the stack admits the jump host's "
                            "subnet on every silo's private endpoints, and a host of your own "
                            "cannot be admitted (the stack manages that NSG)",
                            blocker=refused.nsg,
                        )
                    return Path(True, f"private endpoint '{endpoint.arm_name}'{via}")
            endpoint = registered[0]
            subnet = graph.endpoint_subnet(endpoint)
            where = subnet.vnet.arm_name if subnet is not None else "an unknown subnet"
            return Path(
                False,
                f"private endpoint '{endpoint.arm_name}'",
                f"{target.arm_name} resolves to private endpoint '{endpoint.arm_name}' in VNet "
                f"'{where}', which is not peered with '{vnet.arm_name}'",
                f"Peer '{vnet.arm_name}' with '{where}' (both directions)",
                blocker=endpoint,
            )
    return _public(origin, target, group)


def _endpoint_nsg_refuses(
    graph: ResourceGraph, origin: Origin, subnet: SubnetInfo
) -> Egress | None:
    """The inbound rule of the endpoint's subnet NSG that refuses ``origin``, or None. An NSG
    applies to private endpoints only when the subnet enables network policies for them
    (Microsoft Learn, "Manage network policies for private endpoints"). A source the stack
    does not know (a host of the user's on the hub, a VPN client) still has an address of a
    peered or connected network, which Azure's VirtualNetwork service tag covers (Learn,
    "Virtual network service tags"), so only rules for any VNet address decide it."""
    node = subnet.node
    policies = str((node.get("privateEndpointNetworkPolicies") if node else None) or "Disabled")
    if policies.lower() not in ("enabled", "networksecuritygroupenabled"):
        return None
    nsg = subnet_nsg(graph, subnet)
    if nsg is None:
        return None
    verdict = inbound_from(nsg, origin.source_prefix, "Tcp", 443)
    return None if verdict.allowed else verdict


def compute_named(graph: ResourceGraph, name: str, workspace: Node | None) -> Node | None:
    """The compute ``name`` of ``workspace`` (the only one with that name, if no workspace)."""
    for compute in graph.of_type(COMPUTE):
        if compute.arm_name != name:
            continue
        if workspace is None or str(compute.get("workspaceName") or "") in ("", workspace.arm_name):
            return compute
    return None


def first(values: Sequence[Any]) -> Any:
    return values[0] if values else None
