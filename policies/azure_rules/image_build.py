"""Rule 9: environment images need a build compute when resources sit behind the network.

Source: Azure ML docs, "Secure the workspace resources with virtual networks" (Azure Container
Registry section): the default serverless image build is for networks without restrictions;
when the registry, the workspace storage or the workspace is behind private endpoints or
network rules, set the workspace's ``imageBuildCompute`` to a compute cluster in the VNet
(the archived FL accelerator does), or use prebuilt images.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.graph import COMPUTE, ResourceGraph
from policies.violation import Violation

NUMBER = 9
ID = "azure-9-image-build-compute"
TITLE = "Behind private endpoints or network rules, images build on a cluster in the VNet"
SOURCE = "Azure ML docs: secure workspace resources, Azure Container Registry"
UNVERIFIED = False


def _restricted(graph: ResourceGraph, workspace) -> list[str]:
    reasons = []
    if str(workspace.get("publicNetworkAccess") or "Enabled") == "Disabled":
        reasons.append("the workspace refuses public access")
    registry = graph.find(workspace.get("containerRegistry"))
    if registry is not None and (
        str(registry.get("publicNetworkAccess") or "Enabled") == "Disabled"
        or graph.private_endpoints_to(registry, "registry")
    ):
        reasons.append(f"registry '{registry.arm_name}' is private")
    storage = graph.find(workspace.get("storageAccount"))
    if storage is not None:
        rules = storage.get("networkRuleSet") or {}
        if (
            str(storage.get("publicNetworkAccess") or "Enabled") == "Disabled"
            or str(rules.get("defaultAction") or "Allow") == "Deny"
        ):
            reasons.append(f"storage '{storage.arm_name}' denies public networks")
    return reasons


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for workspace in graph.workspaces():
        reasons = _restricted(graph, workspace)
        if not reasons:
            continue
        name = workspace.get("imageBuildCompute")
        if not name:
            found.append(
                Violation.at(
                    ID,
                    workspace,
                    f"has no imageBuildCompute although {'; '.join(reasons)}; Azure's "
                    "serverless image build cannot reach them and environment builds fail.",
                    "Set imageBuildCompute to a compute cluster in the hub VNet.",
                )
            )
            continue
        compute = next(
            (
                c
                for c in graph.of_type(COMPUTE)
                if c.arm_name == name
                and str(c.get("workspaceName") or workspace.arm_name) == workspace.arm_name
            ),
            None,
        )
        inner = compute.get("properties", "properties") if compute is not None else None
        subnet = inner.get("subnet") if isinstance(inner, Mapping) else None
        if compute is None or not subnet:
            found.append(
                Violation.at(
                    ID,
                    workspace,
                    f"builds images on '{name}', which is "
                    + ("not a compute of this workspace" if compute is None else "not in a VNet")
                    + f", although {'; '.join(reasons)}.",
                    f"Declare '{name}' as an AML cluster in the hub's compute subnet.",
                )
            )
    return found
