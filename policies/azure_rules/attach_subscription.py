"""Rule 26: a Kubernetes cluster is attached from its own subscription only.

Source: Microsoft Learn, "Introduction to Kubernetes compute target in Azure Machine Learning"
(limitations): "Azure Machine Learning doesn't support attaching an AKS cluster cross
subscription. If you have an AKS cluster in a different subscription, you must first connect
it to Azure-Arc and specify in the same subscription as your Azure Machine Learning
workspace." An existing Arc cluster given by id (``arc.mode: existing``) is the case the stack
cannot see at config time: the subscription is known only at deploy time, so the check runs
over the graph (``plan``, the tests and the CrossGuard pack, before anything is created).
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.graph import COMPUTE, ResourceGraph
from policies.violation import Violation

NUMBER = 26
ID = "azure-26-attach-same-subscription"
TITLE = "A Kubernetes compute attaches a cluster in the workspace's subscription"
SOURCE = (
    "Azure ML docs: Kubernetes compute target, limitations "
    "(https://learn.microsoft.com/azure/machine-learning/how-to-attach-kubernetes-anywhere)"
)
UNVERIFIED = False


def _subscription(arm_id: object) -> str | None:
    parts = str(arm_id or "").strip("/").split("/")
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1].lower()
    return None


def _workspace_subscription(graph: ResourceGraph) -> str | None:
    """From the federation manifest the stack exports (the subscription it deploys to)."""
    workspace = graph.federation.get("workspace") or {}
    value = workspace.get("subscription_id") if isinstance(workspace, Mapping) else None
    return str(value).lower() if value else None


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    workspace = _workspace_subscription(graph)
    for compute in graph.of_type(COMPUTE):
        props = compute.get("properties")
        if not isinstance(props, Mapping) or props.get("computeType") != "Kubernetes":
            continue
        cluster = _subscription(props.get("resourceId"))
        own = workspace or _subscription(compute.get("id"))
        if cluster is not None and own is not None and cluster != own:
            found.append(
                Violation.at(
                    ID,
                    compute,
                    f"attaches cluster '{props.get('resourceId')}' from subscription {cluster}, "
                    f"but the workspace is in {own}; Azure "
                    "ML does not attach clusters across subscriptions.",
                    "Connect the cluster to Azure Arc in the workspace's subscription (`az "
                    "connectedk8s connect --subscription <workspace subscription>`) and give "
                    "that connected cluster's id as arc.clusterId.",
                )
            )
    return found
