"""A sandbox's network posture: the one object every component and check reads.

A blueprint is a name, a summary and a posture (``blueprints/catalog.py``). Components take
the posture, not copied flags. The builder exports it (the stack output ``posture``), and the
checks in ``policies/`` read it from there, or from ``BLUEPRINT_POSTURES`` by the blueprint's
name for a stack deployed before the output existed; so ``policies`` needs nothing from
``blueprints``, and a blueprint's posture is written once, here.

Everything Azure's own rules make follow from a choice is derived here (which private DNS
zones exist, whether the workspace needs a private endpoint, which registry tier), so the
components cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Any, Literal

BLOB_ZONE = "privatelink.blob.core.windows.net"
FILE_ZONE = "privatelink.file.core.windows.net"
AML_API_ZONE = "privatelink.api.azureml.ms"
AML_NOTEBOOKS_ZONE = "privatelink.notebooks.azure.net"
VAULT_ZONE = "privatelink.vaultcore.azure.net"
REGISTRY_ZONE = "privatelink.azurecr.io"

ZONES_BY_GROUP: dict[str, tuple[str, ...]] = {
    "blob": (BLOB_ZONE,),
    "file": (FILE_ZONE,),
    "amlworkspace": (AML_API_ZONE, AML_NOTEBOOKS_ZONE),
    "vault": (VAULT_ZONE,),
    "registry": (REGISTRY_ZONE,),
}
"""Private endpoint group id -> the private DNS zones its records live in (Microsoft's
"Azure Private Endpoint DNS configuration" table)."""

SubmitterNetwork = Literal["internet", "hub"]
WorkspaceStorageAccess = Literal["public", "selected-networks"]


@dataclass(frozen=True)
class NetworkPosture:
    """How far a sandbox keeps its resources off the internet."""

    networked: bool
    """Per-member VNets (``compute`` + ``endpoints`` subnets, AML NSG) peered to a hub."""
    storage_private: bool
    """Silo storage and the model store refuse public network access (private endpoints)."""
    node_public_ip: bool
    """Whether compute nodes get public IPs."""
    workspace_private: bool = False
    """The workspace, its key vault and its registry refuse public network access too, and
    the workspace is created as high business impact (``hbi_workspace``)."""
    on_premises_silos: bool = False
    """Silos on the sites' own Kubernetes clusters (Azure Arc) may join; they reach Azure over
    the internet, so storage they use cannot be behind private endpoints only."""
    confidential: bool = False
    """Every silo and the orchestrator's aggregation run on confidential VMs (AKS pools)."""

    def __post_init__(self) -> None:
        if self.storage_private and not self.networked:
            raise ValueError("private storage needs VNets")
        if not self.node_public_ip and not self.networked:
            raise ValueError("computes without public IP need a subnet")
        if self.workspace_private and not (self.storage_private and not self.node_public_ip):
            raise ValueError("a private workspace needs private storage and private computes")
        if self.on_premises_silos and self.storage_private:
            raise ValueError("on-premises silos need storage they can reach over the internet")
        if self.confidential and not self.networked:
            raise ValueError("confidential AKS pools need VNets")

    @property
    def submitter_network(self) -> SubmitterNetwork:
        """Where people and CI runners submit jobs from: the internet (the workspace API is
        public), or a network connected to the hub VNet when the workspace is private."""
        return "hub" if self.workspace_private else "internet"

    @property
    def workspace_endpoint(self) -> bool:
        """A workspace private endpoint (``amlworkspace``): Azure refuses computes without a
        public IP unless the workspace has one, and a private workspace is reached only so."""
        return self.networked and (not self.node_public_ip or self.workspace_private)

    @property
    def workspace_storage_access(self) -> WorkspaceStorageAccess:
        """``selected-networks``: public network access on, default action Deny, a
        resource-instance rule for the workspace and IP rules for submitters. Never
        ``Disabled``: the AML service reaches it as a trusted resource instance, and with
        public access disabled that path does not exist."""
        return "selected-networks" if self.storage_private else "public"

    @property
    def image_build_compute(self) -> bool:
        """Environment images are built on a cluster in the hub VNet: Azure's serverless build
        cannot reach a registry or storage behind private endpoints or network rules."""
        return self.storage_private or self.workspace_private

    @property
    def registry_sku(self) -> str:
        """Only Premium registries take private endpoints."""
        return "Premium" if self.workspace_private else "Basic"

    @property
    def private_dns_zones(self) -> tuple[str, ...]:
        """Every private DNS zone the sandbox's private endpoints register in."""
        zones: list[str] = []
        if self.storage_private:
            zones += [BLOB_ZONE, FILE_ZONE]
        if self.workspace_endpoint:
            zones += [AML_API_ZONE, AML_NOTEBOOKS_ZONE]
        if self.workspace_private:
            zones += [VAULT_ZONE, REGISTRY_ZONE]
        return tuple(zones)

    def to_output(self) -> dict[str, bool]:
        """The posture as the stack output ``posture`` (plain booleans)."""
        return asdict(self)

    @classmethod
    def from_output(cls, value: Any) -> NetworkPosture | None:
        """The posture a stack exported, or None when ``value`` is not one."""
        if not isinstance(value, Mapping):
            return None
        names = {f.name for f in fields(cls)}
        if not set(value) <= names or not all(isinstance(v, bool) for v in value.values()):
            return None
        try:
            return cls(**{k: bool(v) for k, v in value.items()})
        except (TypeError, ValueError):
            return None


BLUEPRINT_POSTURES: Mapping[str, NetworkPosture] = MappingProxyType(
    {
        "minimal": NetworkPosture(networked=False, storage_private=False, node_public_ip=True),
        "eyes-on": NetworkPosture(networked=True, storage_private=False, node_public_ip=True),
        "hybrid": NetworkPosture(
            networked=True, storage_private=False, node_public_ip=True, on_premises_silos=True
        ),
        "eyes-off": NetworkPosture(networked=True, storage_private=True, node_public_ip=False),
        "private": NetworkPosture(
            networked=True, storage_private=True, node_public_ip=False, workspace_private=True
        ),
        "confidential": NetworkPosture(
            networked=True,
            storage_private=True,
            node_public_ip=False,
            workspace_private=True,
            confidential=True,
        ),
    }
)
"""Each blueprint's posture by name (``blueprints.catalog`` adds the summaries)."""


def posture_of(name: str | None) -> NetworkPosture | None:
    """The posture of a blueprint name, or None when the name is unknown or missing."""
    return BLUEPRINT_POSTURES.get(name or "")
