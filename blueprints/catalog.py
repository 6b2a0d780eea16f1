"""The three blueprints, as data. One builder (``blueprints.builder``) walks any of them.

A blueprint only says how isolated the network is; what every sandbox holds (orchestrator,
silos, identities, the permissions table) is the same for all three.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Blueprint:
    """Network posture of a sandbox."""

    name: str
    summary: str
    networked: bool
    """Per-member VNets (``compute`` + ``endpoints`` subnets, AML NSG) peered to the hub."""
    storage_private: bool
    """Storage accounts refuse public network access and are reached via private endpoints."""
    node_public_ip: bool
    """Whether compute nodes get public IPs (only possible when not fully private)."""
    private_dns_zones: tuple[str, ...] = ()
    """Private DNS zones (linked to every VNet) for the private endpoints."""

    def __post_init__(self) -> None:
        if self.storage_private and not self.networked:
            raise ValueError(f"blueprint {self.name}: private storage needs VNets")
        if not self.node_public_ip and not self.networked:
            raise ValueError(f"blueprint {self.name}: computes without public IP need a subnet")
        if self.storage_private and not self.private_dns_zones:
            raise ValueError(f"blueprint {self.name}: private endpoints need private DNS zones")


BLOB_ZONE = "privatelink.blob.core.windows.net"
FILE_ZONE = "privatelink.file.core.windows.net"

BLUEPRINTS: dict[str, Blueprint] = {
    "minimal": Blueprint(
        name="minimal",
        summary="public endpoints, isolation by RBAC only; the fastest way to learn",
        networked=False,
        storage_private=False,
        node_public_ip=True,
    ),
    "eyes-on": Blueprint(
        name="eyes-on",
        summary="a VNet per silo with an AML-ready NSG, peered to the orchestrator hub; "
        "storage still reachable publicly (with RBAC)",
        networked=True,
        storage_private=False,
        node_public_ip=True,
    ),
    "eyes-off": Blueprint(
        name="eyes-off",
        summary="all storage private (public network access disabled, private endpoints, "
        "private DNS linked to every VNet); computes without public IPs",
        networked=True,
        storage_private=True,
        node_public_ip=False,
        private_dns_zones=(BLOB_ZONE, FILE_ZONE),
    ),
}


def blueprint(name: str) -> Blueprint:
    """The named blueprint (names are validated by the spec before this is called)."""
    return BLUEPRINTS[name]
