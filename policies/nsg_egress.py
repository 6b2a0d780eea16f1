"""Does a subnet's NSG let a compute send traffic to a service tag or the internet?

NSG rules are evaluated by priority, lowest number first; the first rule that matches the
direction, protocol, destination port and destination prefix decides. After the declared
rules Azure applies its default outbound rules: ``AllowVnetOutBound`` (65000),
``AllowInternetOutBound`` (65001) and ``DenyAllOutBound`` (65500). Source:
https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview
("Security rules", "Default security rules").

A destination prefix covers a required service tag when it is ``*``, ``Internet`` (service
tags of Azure's public services are internet addresses), ``AzureCloud`` (every Azure public
address), ``AzureCloud.<region>`` for a tag of that region, the tag itself, or the tag's
unregional name (``Storage`` covers ``Storage.westeurope``). Address ranges other than
``0.0.0.0/0`` are not matched: a service tag's addresses change, so an allow by address is
not counted as allowing the tag (a deny by address is not counted as blocking it either).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.graph import Node, ResourceGraph, SubnetInfo

INTERNET = "Internet"
"""The destination of traffic to public FQDNs that have no service tag of their own."""

DEFAULT_OUTBOUND: tuple[dict[str, Any], ...] = (
    {
        "name": "AllowVnetOutBound",
        "priority": 65000,
        "direction": "Outbound",
        "access": "Allow",
        "protocol": "*",
        "destinationAddressPrefix": "VirtualNetwork",
        "destinationPortRange": "*",
    },
    {
        "name": "AllowInternetOutBound",
        "priority": 65001,
        "direction": "Outbound",
        "access": "Allow",
        "protocol": "*",
        "destinationAddressPrefix": "Internet",
        "destinationPortRange": "*",
    },
    {
        "name": "DenyAllOutBound",
        "priority": 65500,
        "direction": "Outbound",
        "access": "Deny",
        "protocol": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "*",
    },
)


DEFAULT_INBOUND: tuple[dict[str, Any], ...] = (
    {
        "name": "AllowVnetInBound",
        "priority": 65000,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": "*",
        "sourceAddressPrefix": "VirtualNetwork",
        "destinationPortRange": "*",
    },
    {
        "name": "AllowAzureLoadBalancerInBound",
        "priority": 65001,
        "direction": "Inbound",
        "access": "Allow",
        "protocol": "*",
        "sourceAddressPrefix": "AzureLoadBalancer",
        "destinationPortRange": "*",
    },
    {
        "name": "DenyAllInBound",
        "priority": 65500,
        "direction": "Inbound",
        "access": "Deny",
        "protocol": "*",
        "sourceAddressPrefix": "*",
        "destinationPortRange": "*",
    },
)


@dataclass(frozen=True)
class Egress:
    """The verdict on one kind of outbound traffic, and the rule that decided it."""

    allowed: bool
    rule: str
    nsg: Node | None


def subnet_nsg(graph: ResourceGraph, subnet: SubnetInfo | None) -> Node | None:
    """The NSG attached to a subnet (declared as a resource or inline in its VNet)."""
    if subnet is None:
        return None
    props: Mapping[str, Any] | None = subnet.node.props if subnet.node is not None else None
    if props is None:
        for inline in subnet.vnet.get("subnets") or []:
            if isinstance(inline, Mapping) and inline.get("name") == subnet.name:
                props = inline.get("properties") or inline
    nsg = (props or {}).get("networkSecurityGroup")
    return graph.find(nsg.get("id") if isinstance(nsg, Mapping) else nsg)


def _rules(nsg: Node | None, direction: str = "Outbound") -> list[Mapping[str, Any]]:
    declared = [
        r
        for r in ((nsg.get("securityRules") if nsg is not None else None) or [])
        if isinstance(r, Mapping)
    ]
    found = [r for r in declared if str(r.get("direction") or "").lower() == direction.lower()]
    found += list(DEFAULT_OUTBOUND if direction == "Outbound" else DEFAULT_INBOUND)
    return sorted(found, key=lambda r: float(r.get("priority") or 0))


def _values(rule: Mapping[str, Any], one: str, many: str) -> list[str]:
    values = [str(v) for v in rule.get(many) or [] if v is not None]
    if rule.get(one) is not None:
        values.append(str(rule[one]))
    return values


def _port_matches(spec: str, port: int) -> bool:
    if spec == "*":
        return True
    low, _, high = spec.partition("-")
    try:
        return int(low) <= port <= int(high or low)
    except ValueError:
        return False


def _covers(prefix: str, tag: str) -> bool:
    p, t = prefix.lower(), tag.lower()
    if p in ("*", "0.0.0.0/0", "internet", "azurecloud") or p == t:
        return True
    base, _, region = t.partition(".")
    return bool(region) and p in (base, f"azurecloud.{region}")


def _first_match(
    nsg: Node | None, direction: str, protocol: str, port: int, peer: Callable[[str], bool]
) -> Egress:
    """Azure's evaluation: the first rule by priority matching direction, protocol, port and
    (``peer``) the other end's prefix decides; the defaults come last."""
    side = "destination" if direction == "Outbound" else "source"
    for rule in _rules(nsg, direction):
        proto = str(rule.get("protocol") or "*").lower()
        if proto not in ("*", "any", protocol.lower()):
            continue
        ports = _values(rule, "destinationPortRange", "destinationPortRanges") or ["*"]
        if not any(_port_matches(p, port) for p in ports):
            continue
        if not any(
            peer(p) for p in _values(rule, f"{side}AddressPrefix", f"{side}AddressPrefixes")
        ):
            continue
        allowed = str(rule.get("access") or "").lower() == "allow"
        return Egress(allowed, str(rule.get("name") or "unnamed rule"), nsg)
    return Egress(False, f"DenyAll{direction[:-5]}Bound", nsg)


def egress(
    nsg: Node | None, tag: str, protocol: str, port: int, direction: str = "Outbound"
) -> Egress:
    """Whether ``nsg`` lets ``protocol``/``port`` traffic out to ``tag`` (or, ``direction``
    ``Inbound``, in from ``tag``)."""
    return _first_match(nsg, direction, protocol, port, lambda p: _covers(p, tag))


def _source_covers(prefix: str, source: str | None) -> bool:
    """Whether an inbound rule's source ``prefix`` covers traffic from ``source`` (a subnet
    range, or None for "somewhere in a peered VNet"), which comes from a VNet."""
    p = prefix.lower()
    if p in ("*", "any", "virtualnetwork", "0.0.0.0/0"):
        return True
    if source is None:
        return False
    try:
        inner, outer = ipaddress.ip_network(source), ipaddress.ip_network(prefix)
    except ValueError:
        return False
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def inbound_from(nsg: Node | None, source: str | None, protocol: str, port: int) -> Egress:
    """Whether ``nsg`` admits ``protocol``/``port`` traffic from VNet range ``source`` (None:
    an unknown address of a peered VNet, admitted only by rules for any VNet address)."""
    return _first_match(nsg, "Inbound", protocol, port, lambda p: _source_covers(p, source))


def route_to(graph: ResourceGraph, subnet: SubnetInfo | None, tag: str) -> Mapping[str, Any] | None:
    """The route of the subnet's route table that takes traffic to ``tag`` (a route for the
    tag itself, else the default route 0.0.0.0/0); None without a route table or route."""
    if subnet is None or subnet.node is None:
        return None
    ref = subnet.node.get("routeTable")
    table = graph.find(ref.get("id") if isinstance(ref, Mapping) else ref)
    routes: Sequence[Any] = (table.get("routes") if table is not None else None) or []
    named = [r for r in routes if isinstance(r, Mapping)]
    for wanted in (tag.lower(), tag.split(".")[0].lower(), "0.0.0.0/0"):
        for route in named:
            if str(route.get("addressPrefix") or "").lower() == wanted:
                return route
    return None
