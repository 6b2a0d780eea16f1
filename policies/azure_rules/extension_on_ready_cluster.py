"""Rule 18: the Azure ML extension goes on a cluster that is ready for it.

Source: Azure CLI connectedk8s (``az connectedk8s connect`` waits for
``connectivityStatus == Connected``; extensions created before the agents connect fail with
"Unable to get response from the Agent in time"); Azure ML docs, "Deploy Azure Machine
Learning extension on AKS or Arc Kubernetes cluster" (the extension is created on the
cluster's own resource provider: ``Microsoft.Kubernetes/connectedClusters`` for Arc,
``Microsoft.ContainerService/managedClusters`` for AKS; its pods are scheduled by its node
selector, so the pool it selects must exist).

An Arc cluster onboarded by this stack must be reported Connected first; an already
connected cluster (read by id) is the site's to keep connected, and is not checked offline.
"""

from __future__ import annotations

from components.vocabulary.arm_types import (
    AGENT_POOL,
    CONNECTED_CLUSTER,
    K8S_EXTENSION,
    MANAGED_CLUSTER,
)
from policies.graph import Node, ResourceGraph, silo_of
from policies.violation import Violation

NUMBER = 18
ID = "azure-18-extension-on-ready-cluster"
TITLE = "The Azure ML extension names its cluster's provider and waits until the cluster is ready"
SOURCE = "Azure CLI connectedk8s (connect waits for Connected); Azure ML docs: deploy the extension"
UNVERIFIED = False

ML_EXTENSION = "microsoft.azureml.kubernetes"


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for extension in graph.of_type(K8S_EXTENSION):
        if str(extension.get("extensionType") or "").lower() != ML_EXTENSION:
            continue
        cluster = graph.extension_cluster(extension)
        if cluster is None and not graph.extension_target_known(extension):
            continue  # a deployed stack that no longer says which cluster: nothing to check
        if cluster is None:
            found.append(
                Violation.at(
                    ID,
                    extension,
                    f"names cluster '{extension.get('clusterName')}' under "
                    f"{extension.get('clusterRp')}/{extension.get('clusterResourceName')}, "
                    "which is no cluster of this sandbox; ARM cannot find it.",
                    "Use Microsoft.Kubernetes/connectedClusters for an Arc cluster and "
                    "Microsoft.ContainerService/managedClusters for AKS, with its name and group.",
                )
            )
            continue
        if not graph.waits_for(extension, cluster) and not cluster.read:
            found.append(
                Violation.at(
                    ID,
                    extension,
                    f"is not created after {cluster.label}.",
                    "Make the extension depend on the cluster.",
                )
            )
        if cluster.type == CONNECTED_CLUSTER and _onboarded_here(cluster):
            waits = graph.connectivity_waits(cluster)
            if not any(graph.waits_for(extension, w) for w in waits):
                found.append(
                    Violation.at(
                        ID,
                        extension,
                        f"does not wait until {cluster.label} reports Connected; installed "
                        "before the Arc agents connect, it fails with 'Unable to get response "
                        "from the Agent in time'.",
                        "Make the extension depend on the connectivity wait (ArcConnected).",
                    )
                )
        if cluster.type == MANAGED_CLUSTER:
            found += _selected_pool_first(graph, extension, cluster)
    return found


def _onboarded_here(cluster: Node) -> bool:
    """Connected by this stack: declared, not read, and tagged as one of its silos (a cluster
    read by id carries its site's tags, whether or not the read is visible)."""
    return not cluster.read and silo_of(cluster) is not None


def _selected_pool_first(graph: ResourceGraph, extension: Node, cluster: Node) -> list[Violation]:
    """Where the extension selects nodes by label, a pool with those labels exists first."""
    settings = extension.get("configurationSettings") or {}
    selector = {
        k.removeprefix("nodeSelector."): v
        for k, v in settings.items()
        if isinstance(k, str) and k.startswith("nodeSelector.")
    }
    if not selector:
        return []
    inline = [p for p in cluster.get("agentPoolProfiles") or [] if isinstance(p, dict)]
    if any(selector.items() <= (p.get("nodeLabels") or {}).items() for p in inline):
        return []
    pools = [
        p
        for p in graph.of_type(AGENT_POOL)
        if str(p.get("resourceName") or "").lower() == cluster.arm_name.lower()
        and selector.items() <= (p.get("nodeLabels") or {}).items()
    ]
    if not pools:
        return [
            Violation.at(
                ID,
                extension,
                f"selects nodes {selector} that no pool of {cluster.label} carries; its pods "
                "would never be scheduled.",
                "Label the FL pool with the extension's node selector.",
            )
        ]
    if not any(graph.waits_for(extension, p) for p in pools):
        return [
            Violation.at(
                ID,
                extension,
                f"is not created after the pool its node selector {selector} picks.",
                "Make the extension depend on that agent pool.",
            )
        ]
    return []
