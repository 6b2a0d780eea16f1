"""Rule 4: writes to one private DNS zone happen one at a time.

Source: the archived Azure-Samples FL accelerator's CI failing with "Conflict ...
privatelink.blob.core.windows.net already has 1 operations ... queued" (its issue 137), and
terraform-provider-azurerm issue 14858. Every VNet link and every private endpoint DNS zone
group writing into a zone must wait for the zone's previous writer: the writers form a chain.
"""

from __future__ import annotations

import itertools

from policies.graph import PRIVATE_DNS_ZONE, ResourceGraph
from policies.violation import Violation

NUMBER = 4
ID = "azure-4-dns-writes-serialised"
TITLE = "Writes to one private DNS zone (VNet links, zone groups) form one chain"
SOURCE = "Azure-Samples FL accelerator issue 137; terraform-provider-azurerm issue 14858"
UNVERIFIED = False


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for zone in graph.of_type(PRIVATE_DNS_ZONE):
        writers = graph.zone_writers(zone)
        # In a chain, the k-th writer waits for exactly the k writers before it.
        ranked = sorted(
            writers, key=lambda w: sum(1 for other in writers if graph.waits_for(w, other))
        )
        for before, after in itertools.pairwise(ranked):
            if not graph.waits_for(after, before):
                found.append(
                    Violation.at(
                        ID,
                        after,
                        f"writes into private DNS zone {zone.arm_name} concurrently with "
                        f"'{before.name}'; Azure refuses parallel operations on one zone.",
                        "Make each VNet link and zone group of a zone depend on the zone's "
                        "previous writer.",
                    )
                )
    return found
