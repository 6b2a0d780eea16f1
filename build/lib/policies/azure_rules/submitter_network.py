"""Rule 7: submitters reach the workspace storage over the network.

Source: Azure ML docs, "Use your workspace with a custom DNS server / network isolation":
with public network access Disabled only private-endpoint traffic is accepted, so a laptop or
CI runner outside the VNets cannot upload; the accelerator keeps the workspace storage
reachable whenever the workspace API is public "to allow for component uploads". The
documented middle ground: public access Enabled, default action Deny, a resource-instance
rule for the workspace, and IP rules for the submitters. Submitters on the hub network reach
it through its private endpoint instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.graph import ResourceGraph
from policies.network_paths import reach, submitter_origin
from policies.violation import Violation

NUMBER = 7
ID = "azure-7-submitter-storage-network"
TITLE = "The workspace storage admits the submitters' network"
SOURCE = "Azure ML docs: network isolation of the workspace storage; FL accelerator templates"
UNVERIFIED = False


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    entries = [s for s in graph.outputs.get("submitters") or [] if isinstance(s, Mapping)]
    for workspace in graph.workspaces():
        storage = graph.find(workspace.get("storageAccount"))
        if storage is None:
            continue
        for entry in entries:
            origin = submitter_origin(
                graph, str(entry.get("network") or "internet"), list(entry.get("ip_ranges") or [])
            )
            path = reach(graph, origin, storage, "blob")
            if not path.ok:
                found.append(
                    Violation.at(
                        ID,
                        storage,
                        f"cannot be reached by submitter {entry.get('principal_id')} from "
                        f"{origin.label}: {path.problem}.",
                        path.fix,
                    )
                )
    return found
