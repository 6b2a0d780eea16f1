"""Rule 45: a peering follows its remote VNet's ranges, so a range added later is routed.

Source: Microsoft Learn, "Create, change, or delete a virtual network peering", "Update the
address space or address ranges of a peered virtual network"
(https://learn.microsoft.com/azure/virtual-network/update-virtual-network-peering-address-space):
after "adding address ranges to a virtual network", each peering must be synced ("Sync the
peering ... after the address space changes") or the peered VNets keep routing only the
ranges they had. The sandbox adds a range to the hub when ``jumpHost`` is turned on for a
deployed stack, so every peering records its remote VNet's ranges
(``remoteVirtualNetworkAddressSpace``) and asks Azure to sync (``syncRemoteAddressSpace``,
the REST API's query parameter that ``az network vnet peering sync`` sends): a new range then
changes the peering, and Pulumi's update of it is the sync. A peering whose record misses a
range of its remote VNet is named here.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.graph import VNET_PEERING, ResourceGraph
from policies.violation import Violation

NUMBER = 45
ID = "azure-45-peering-sync"
TITLE = "A VNet peering records its remote VNet's ranges and syncs when they change"
SOURCE = (
    "Virtual network docs: update the address space of a peered virtual network "
    "(https://learn.microsoft.com/azure/virtual-network/"
    "update-virtual-network-peering-address-space)"
)
UNVERIFIED = False


def _prefixes(value: object) -> set[str]:
    if not isinstance(value, Mapping):
        return set()
    return {str(p) for p in value.get("addressPrefixes") or []}


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for peering in graph.of_type(VNET_PEERING):
        remote = graph.find(peering.get("remoteVirtualNetwork"))
        if remote is None:  # outside the stack: its ranges are not known here
            continue
        ranges = _prefixes(remote.get("addressSpace"))
        recorded = _prefixes(peering.get("remoteVirtualNetworkAddressSpace"))
        missing = sorted(ranges - recorded)
        sync = str(peering.get("syncRemoteAddressSpace") or "").lower() == "true"
        if not missing and sync:
            continue
        problem = (
            f"does not record {', '.join(missing)} of VNet '{remote.arm_name}'"
            if missing
            else "does not ask Azure to sync (syncRemoteAddressSpace)"
        )
        found.append(
            Violation.at(
                ID,
                peering,
                f"{problem}: after a range is added to that VNet (e.g. the jump host on a "
                "deployed stack) this peering keeps routing only the old ranges, and traffic "
                "from the new one never arrives.",
                "Set remote_virtual_network_address_space to the remote VNet's address "
                "prefixes and sync_remote_address_space='true' on the peering.",
            )
        )
    return found
