"""Rule 1: a compute cluster without public IP needs a workspace private endpoint.

Source: ARM error "Provided EnableNodePublicIp 'False' requires workspace private endpoint"
(Azure/data-product-analytics issue 70); Azure ML docs, "Secure an Azure Machine Learning
training environment with virtual networks": a compute without public IP communicates with
the service through the workspace's private endpoint. The endpoint (group ``amlworkspace``)
registers in ``privatelink.api.azureml.ms`` and ``privatelink.notebooks.azure.net``, which
must be linked to the compute's VNet, and the compute must be created after the endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

from components.vocabulary.posture import ZONES_BY_GROUP
from policies.graph import COMPUTE, Node, ResourceGraph
from policies.violation import Violation

NUMBER = 1
ID = "azure-1-workspace-endpoint"
TITLE = "Computes without public IP: a workspace private endpoint, its zones linked, created first"
SOURCE = (
    "ARM error 'Provided EnableNodePublicIp False requires workspace private endpoint' "
    "(Azure/data-product-analytics#70); Azure ML docs: secure training environment"
)
UNVERIFIED = False


def _workspace_of(graph: ResourceGraph, compute: Node) -> Node | None:
    name = str(compute.get("workspaceName") or "")
    matches = [w for w in graph.workspaces() if w.arm_name == name]
    if matches:
        return matches[0]
    workspaces = graph.workspaces()
    return workspaces[0] if len(workspaces) == 1 else None


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for compute in graph.of_type(COMPUTE):
        inner = compute.get("properties", "properties")
        if not isinstance(inner, Mapping) or inner.get("enableNodePublicIp") is not False:
            continue
        workspace = _workspace_of(graph, compute)
        if workspace is None:
            continue
        endpoints = graph.private_endpoints_to(workspace, "amlworkspace")
        if not endpoints:
            found.append(
                Violation.at(
                    ID,
                    compute,
                    f"has enableNodePublicIp=false but workspace '{workspace.arm_name}' has no "
                    "private endpoint (group 'amlworkspace'); ARM refuses the compute.",
                    "Add a private endpoint with groupIds=['amlworkspace'] to the workspace in "
                    "the hub's endpoints subnet, registered in privatelink.api.azureml.ms and "
                    "privatelink.notebooks.azure.net, and make the compute depend on it.",
                )
            )
            continue
        if not any(graph.waits_for(compute, e) for e in endpoints):
            found.append(
                Violation.at(
                    ID,
                    compute,
                    f"is not created after workspace '{workspace.arm_name}''s private endpoint "
                    f"'{endpoints[0].arm_name}'; ARM may see a private compute before the "
                    "endpoint exists.",
                    "Make the compute depend on the endpoint (or its DNS zone group).",
                )
            )
        subnet = graph.find_subnet(inner.get("subnet"))
        if subnet is None:
            continue
        for zone in ZONES_BY_GROUP["amlworkspace"]:
            if graph.zone(zone) is None or not graph.zone_linked(zone, subnet.vnet):
                found.append(
                    Violation.at(
                        ID,
                        compute,
                        f"runs in VNet '{subnet.vnet.arm_name}', which is not linked to the "
                        f"private DNS zone {zone}, so the workspace's names do not resolve to "
                        "its private endpoint there.",
                        f"Create {zone} and link it to '{subnet.vnet.arm_name}'.",
                    )
                )
    return found
