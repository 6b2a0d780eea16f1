"""Rule 2: only Premium container registries take private endpoints or network rules.

Source: Azure Container Registry docs, "Connect privately to an Azure container registry
using Azure Private Link" and "Configure public registry access": private endpoints and
disabling public network access are Premium-tier features.
"""

from __future__ import annotations

from policies.graph import CONTAINER_REGISTRY, ResourceGraph
from policies.violation import Violation

NUMBER = 2
ID = "azure-2-premium-registry"
TITLE = "Registries behind private endpoints or with public access off are Premium"
SOURCE = "ACR docs: Private Link and public network access need the Premium tier"
UNVERIFIED = False


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for registry in graph.of_type(CONTAINER_REGISTRY):
        sku = str(registry.get("sku", "name") or "")
        reasons = []
        if graph.private_endpoints_to(registry, "registry"):
            reasons.append("has a private endpoint")
        if str(registry.get("publicNetworkAccess") or "") == "Disabled":
            reasons.append("has public network access disabled")
        if reasons and sku != "Premium":
            found.append(
                Violation.at(
                    ID,
                    registry,
                    f"{' and '.join(reasons)} but its SKU is {sku or 'unset'!r}; ARM refuses "
                    "both below Premium.",
                    "Set sku.name='Premium' (or keep the registry public).",
                )
            )
    return found
