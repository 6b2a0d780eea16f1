"""Rule 15: a compute resource lives in its workspace's region; its nodes in compute_location.

Source: Azure Verified Modules (``avm/res/machine-learning-services/workspace`` computes) and
the archived Azure-Samples FL accelerator declare cross-region clusters with the workspace's
``location`` and the silo's ``computeLocation``; *a permanent diff or a refusal otherwise is
unverified*.
"""

from __future__ import annotations

from policies.graph import COMPUTE, ResourceGraph
from policies.violation import Violation

NUMBER = 15
ID = "azure-15-compute-location"
TITLE = "Computes: location is the workspace's region, computeLocation the silo's"
SOURCE = "Azure Verified Modules; FL accelerator templates (unverified)"
UNVERIFIED = True


def _region(value: object) -> str:
    return str(value or "").replace(" ", "").lower()


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    regions = {w.arm_name: _region(w.get("location")) for w in graph.workspaces()}
    for compute in graph.of_type(COMPUTE):
        if compute.get("properties", "computeType") != "AmlCompute":
            continue
        workspace_region = regions.get(str(compute.get("workspaceName") or ""))
        if workspace_region and _region(compute.get("location")) != workspace_region:
            found.append(
                Violation.at(
                    ID,
                    compute,
                    f"has location {compute.get('location')!r}, not its workspace's region "
                    f"{workspace_region!r}.",
                    "Set location to the workspace's region and the nodes' region in "
                    "properties.computeLocation.",
                )
            )
        if not compute.get("properties", "computeLocation"):
            found.append(
                Violation.at(
                    ID,
                    compute,
                    "leaves properties.computeLocation unset, so where its nodes run depends on "
                    "Azure's default.",
                    "Set properties.computeLocation to the silo's region.",
                )
            )
    return found
