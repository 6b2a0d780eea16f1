"""Rule 41: Azure Bastion's own requirements on its subnet, its public IP and its SKU.

Source: Microsoft Learn, "About Azure Bastion configuration settings"
(https://learn.microsoft.com/azure/bastion/configuration-settings): "The subnet must be named
AzureBastionSubnet" and "must be /26 or larger"; the public IP address "must be ... Standard
SKU ... Static"; and "Connect to a VM using Bastion and the native client"
(https://learn.microsoft.com/azure/bastion/native-client): native-client support
(``enableTunneling``, what ``az network bastion ssh`` uses) "requires the Standard SKU tier or
higher". ARM refuses the Bastion host otherwise (the subnet and IP rules), or the jump host
cannot be reached with the native client (the SKU rule).
"""

from __future__ import annotations

import ipaddress

from components.vocabulary.arm_types import BASTION_HOST, PUBLIC_IP, SUBNET
from policies.graph import Node, ResourceGraph
from policies.violation import Violation

NUMBER = 41
ID = "azure-41-bastion"
TITLE = "Azure Bastion: AzureBastionSubnet of /26 or larger, a Standard static IP, Standard SKU"
SOURCE = (
    "Azure Bastion configuration settings "
    "(https://learn.microsoft.com/azure/bastion/configuration-settings); native client "
    "(https://learn.microsoft.com/azure/bastion/native-client)"
)
UNVERIFIED = False

BASTION_SUBNET = "AzureBastionSubnet"


def _config_target(graph: ResourceGraph, bastion: Node, key: str) -> Node | None:
    for config in bastion.get("ipConfigurations") or []:
        ref = (config or {}).get(key) or {}
        if isinstance(ref, dict) and ref.get("id"):
            return graph.find(ref["id"])
    return None


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for bastion in graph.of_type(BASTION_HOST):
        sku = (bastion.get("sku") or {}).get("name") or "Basic"
        if bastion.get("enableTunneling") and sku not in ("Standard", "Premium"):
            found.append(
                Violation.at(
                    ID,
                    bastion,
                    f"enables native-client tunnelling on SKU {sku!r}, which does not offer it.",
                    "Use sku Standard (or Premium) for `az network bastion ssh`.",
                )
            )
        subnet = _config_target(graph, bastion, "subnet")
        if subnet is None or subnet.type != SUBNET:
            found.append(
                Violation.at(
                    ID, bastion, "names no subnet of this stack.", "Put it in AzureBastionSubnet."
                )
            )
        else:
            prefix = subnet.get("addressPrefix")
            size = ipaddress.ip_network(prefix).prefixlen if isinstance(prefix, str) else None
            if subnet.arm_name != BASTION_SUBNET or size is None or size > 26:
                found.append(
                    Violation.at(
                        ID,
                        subnet,
                        f"hosts Bastion '{bastion.arm_name}' but is named '{subnet.arm_name}' "
                        f"with prefix {prefix}; Azure Bastion needs a subnet named "
                        f"{BASTION_SUBNET} of /26 or larger.",
                        f"Name the subnet {BASTION_SUBNET} and give it a /26 or larger prefix.",
                    )
                )
        ip = _config_target(graph, bastion, "publicIPAddress")
        if ip is None or ip.type != PUBLIC_IP:
            found.append(
                Violation.at(
                    ID, bastion, "has no public IP of this stack.", "Give it a Standard static IP."
                )
            )
        elif (ip.get("sku") or {}).get("name") != "Standard" or ip.get(
            "publicIPAllocationMethod"
        ) != "Static":
            found.append(
                Violation.at(
                    ID,
                    ip,
                    f"serves Bastion '{bastion.arm_name}' but is not a Standard, static IP.",
                    "Use sku Standard and public_ip_allocation_method Static.",
                )
            )
    return found
