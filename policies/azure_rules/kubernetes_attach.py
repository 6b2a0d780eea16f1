"""Rule 19: a Kubernetes compute is attached after what it names exists in the cluster.

Source: Azure ML docs, "Attach a Kubernetes cluster to Azure Machine Learning workspace" (the
namespace must exist in the cluster before the attach; only the first user-assigned identity
is used) and "Create and manage instance types" (``InstanceType`` is a custom resource the
Azure ML extension installs, so instance types can be created only after the extension).
"""

from __future__ import annotations

from collections.abc import Mapping

from components.vocabulary.arm_types import K8S_INSTANCE_TYPE, K8S_NAMESPACE
from policies.graph import COMPUTE, Node, ResourceGraph
from policies.violation import Violation

NUMBER = 19
ID = "azure-19-kubernetes-attach-order"
TITLE = "A Kubernetes compute is attached after its extension, namespace and instance types"
SOURCE = "Azure ML docs: attach a Kubernetes cluster; create and manage instance types"
UNVERIFIED = False


def _named(graph: ResourceGraph, type_token: str, name: str) -> list[Node]:
    return [n for n in graph.of_type(type_token) if n.get("metadata", "name") == name]


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for compute in graph.of_type(COMPUTE):
        props = compute.get("properties")
        if not isinstance(props, Mapping) or props.get("computeType") != "Kubernetes":
            continue

        def problem(what: str, fix: str, compute: Node = compute) -> None:
            found.append(Violation.at(ID, compute, what, fix))

        identities = compute.get("identity", "userAssignedIdentities") or {}
        if len(identities) > 1:
            problem(
                f"carries {len(identities)} user-assigned identities; Azure ML uses only the "
                "first, so jobs may run as an identity other than the silo's.",
                "Attach the compute with exactly the silo's identity.",
            )
        cluster = graph.cluster_of(compute)
        if cluster is None:
            problem(
                f"is attached to '{props.get('resourceId')}', which is no cluster here.",
                "Attach the silo's AKS or Arc-connected cluster by its id.",
            )
            continue
        extensions = graph.extensions_on(cluster)
        if not any(graph.waits_for(compute, e) for e in extensions):
            problem(
                f"is attached to {cluster.label} without waiting for the Azure ML extension there.",
                "Install the extension first and make the compute depend on it.",
            )
        inner = props.get("properties") or {}
        namespace = str(inner.get("namespace") or "default")
        if namespace != "default" and not any(
            graph.waits_for(compute, n) for n in _named(graph, K8S_NAMESPACE, namespace)
        ):
            problem(
                f"names namespace '{namespace}', which it does not wait for; the attach fails "
                "when the namespace does not exist yet.",
                "Declare the namespace and make the compute depend on it.",
            )
        for name in inner.get("instanceTypes") or {}:
            # Other silos may use the same names: only the ones this compute waits for count.
            types = [
                t for t in _named(graph, K8S_INSTANCE_TYPE, name) if graph.waits_for(compute, t)
            ]
            if not types:
                problem(
                    f"lists instance type '{name}', which it does not wait for.",
                    "Declare the InstanceType and make the compute depend on it.",
                )
            for itype in types:
                if not any(graph.waits_for(itype, e) for e in extensions):
                    found.append(
                        Violation.at(
                            ID,
                            itype,
                            "is created without waiting for the Azure ML extension, which "
                            "installs its custom resource definition.",
                            "Make the instance type depend on the extension.",
                        )
                    )
    return found
