"""Rule 29: private DNS zone links fall back to public resolution for names they lack.

Source: Azure private DNS, virtual network link ``resolutionPolicy`` (azure-native SDK
docstring, from the Microsoft.Network/privateDnsZones/virtualNetworkLinks REST reference):
"When set to 'NxDomainRedirect', Azure DNS resolver falls back to public resolution if
private dns query resolution results in non-existent domain response." Computes also resolve
Microsoft-owned names (Batch storage, the HBI back-end key vault, per
https://learn.microsoft.com/azure/machine-learning/how-to-access-azureml-behind-firewall);
a linked privatelink zone without their record would answer NXDOMAIN. The failure is
*unverified* (audit 2, N15).
"""

from __future__ import annotations

from components.vocabulary.arm_types import PRIVATE_DNS_LINK
from policies.graph import ResourceGraph
from policies.violation import Violation

NUMBER = 29
ID = "azure-29-dns-link-fallback"
TITLE = "Private DNS zone links fall back to public resolution (NxDomainRedirect)"
SOURCE = (
    "Private DNS virtual network link resolutionPolicy; Azure ML docs: access Azure ML behind "
    "a firewall (https://learn.microsoft.com/azure/machine-learning/how-to-access-azureml-behind-firewall)"
)
UNVERIFIED = True


def check(graph: ResourceGraph) -> list[Violation]:
    return [
        Violation.at(
            ID,
            link,
            f"links zone '{link.get('privateZoneName')}' with resolutionPolicy "
            f"{link.get('resolutionPolicy')!r}; names the zone lacks answer NXDOMAIN.",
            "Set resolution_policy='NxDomainRedirect' on the link.",
        )
        for link in graph.of_type(PRIVATE_DNS_LINK)
        if link.get("resolutionPolicy") != "NxDomainRedirect"
    ]
