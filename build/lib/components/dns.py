"""Private DNS zones, and one writer at a time per zone.

Azure refuses concurrent writes to one private DNS zone ("Conflict ... already has 1
operations ... queued"; seen in the archived Azure-Samples FL accelerator's CI, its issue 137,
and terraform-provider-azurerm issue 14858). Every VNet link and every private endpoint's DNS
zone group is a write, and they come from the hub and from every silo, so the builder threads
one ``ZoneWrites`` through all of them: each writer waits for the zone's previous writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pulumi
from pulumi_azure_native import privatedns


def zone_label(zone: str) -> str:
    """A short resource-name label for a zone (``blob``, ``api``, ``azurecr``...)."""
    return zone.removeprefix("privatelink.").split(".")[0]


def private_zones(
    name: str,
    zones: Iterable[str],
    *,
    resource_group_name: pulumi.Input[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> dict[str, privatedns.PrivateZone]:
    """The sandbox's private DNS zones, all in the orchestrator's resource group."""
    return {
        zone: privatedns.PrivateZone(
            f"{name}-zone-{zone_label(zone)}",
            private_zone_name=zone,
            resource_group_name=resource_group_name,
            location="global",
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for zone in zones
    }


class ZoneWrites:
    """The sandbox's private DNS zones, and the last resource that wrote into each."""

    def __init__(
        self,
        zones: Mapping[str, privatedns.PrivateZone],
        resource_group_name: pulumi.Input[str] | None = None,
    ) -> None:
        self.zones = dict(zones)
        self.resource_group_name = resource_group_name
        self._last: dict[str, pulumi.Resource] = {}

    def after(self, zones: Iterable[str]) -> list[pulumi.Resource]:
        """The writers a new write into ``zones`` must wait for."""
        found: list[pulumi.Resource] = []
        for zone in zones:
            last = self._last.get(zone)
            if last is not None and last not in found:
                found.append(last)
        return found

    def wrote(self, zones: Iterable[str], resource: pulumi.Resource) -> None:
        """Record ``resource`` as the latest writer of ``zones``."""
        for zone in zones:
            self._last[zone] = resource

    def __bool__(self) -> bool:
        return bool(self.zones)
