"""Invariant 5: every silo compute runs as its silo, where its silo is, and costs nothing idle.

A silo compute runs as its silo's user-assigned identity and only that one (no system
identity beside it), in the silo's region, in one of the silo's own subnets whenever the silo
has a VNet, scales down to 0 nodes, and, in private blueprints, has no public node IPs. The
last two apply to the orchestrator's cluster as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.vocabulary.arm_types import MANAGED_CLUSTER
from components.vocabulary.conventions import ROLE_SILO, TAG_ROLE, TAG_SILO
from policies.graph import (
    COMPUTE,
    USER_ASSIGNED_IDENTITY,
    VIRTUAL_NETWORK,
    Node,
    ResourceGraph,
    side_of,
    silo_of,
)
from policies.violation import Violation

NUMBER = 5
ID = "compute-placement"
TITLE = "Silo computes: own identity, own region and subnet, min 0 nodes, private IPs"


def _region(value: Any) -> str:
    return str(value or "").replace(" ", "").lower()


def _identity_ids(compute: Node) -> list[str]:
    uais = compute.get("identity", "userAssignedIdentities")
    if isinstance(uais, Mapping):
        return [str(k) for k in uais]
    if isinstance(uais, list):
        return [str(v) for v in uais]
    return []


def _identity_problems(graph: ResourceGraph, compute: Node, silo: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    fix = f"Give the compute identity type 'UserAssigned' with only silo '{silo}''s identity."
    identity_type = str(compute.get("identity", "type") or "")
    if "SystemAssigned" in identity_type:
        problems.append((f"has a system-assigned identity ({identity_type!r}).", fix))
    ids = _identity_ids(compute)
    if not ids:
        problems.append(("runs with no user-assigned identity.", fix))
    for uai_id in ids:
        node = graph.find(uai_id)
        if node is None or node.type != USER_ASSIGNED_IDENTITY:
            problems.append((f"runs as identity {uai_id!r}, which is not in this sandbox.", fix))
        elif side_of(node) != ROLE_SILO or silo_of(node) != silo:
            owner = silo_of(node) or side_of(node) or "an untagged owner"
            problems.append((f"runs as {node.label}, which belongs to '{owner}'.", fix))
    return problems


def _cluster_problems(graph: ResourceGraph, compute: Node, silo: str) -> list[tuple[str, str]]:
    """A Kubernetes compute: its cluster in the silo's region, an AKS cluster's pools in the
    silo's subnet and without public node IPs where the posture says so."""
    problems: list[tuple[str, str]] = []
    cluster = graph.cluster_of(compute)
    if cluster is None:
        target = compute.get("properties", "resourceId")
        return [
            (
                f"is attached to cluster {target!r}, which is not in this sandbox (neither "
                "declared nor read), so nothing can tell where it runs.",
                "Declare the cluster, or read the connected cluster by id (mode: existing).",
            )
        ]
    region = graph.silo_region(silo)
    location = cluster.get("location")
    if region is not None and location and _region(location) != _region(region):
        problems.append(
            (
                f"is attached to {cluster.label} in region {location!r}, but silo '{silo}' is "
                f"in {region!r}.",
                f"Put the silo's cluster in {region!r}.",
            )
        )
    if cluster.type != MANAGED_CLUSTER:
        return problems
    for pool, subnet in zip(
        graph.cluster_pools(cluster), graph.cluster_subnets(cluster), strict=True
    ):
        name = pool.get("name") or pool.get("agentPoolName") or "?"
        if subnet is None or subnet.silo != silo:
            owner = subnet.silo if subnet is not None else None
            problems.append(
                (
                    f"runs pool '{name}' of {cluster.label} outside silo '{silo}''s subnets"
                    + (f" (in silo '{owner}''s)" if owner else "")
                    + ".",
                    f"Put every pool in silo '{silo}''s compute subnet.",
                )
            )
        if graph.private_nodes and pool.get("enableNodePublicIP"):
            problems.append(
                (
                    f"runs pool '{name}' of {cluster.label} with public node IPs in blueprint "
                    f"'{graph.blueprint}', whose computes have no public IPs.",
                    "Set enableNodePublicIP=False on every pool.",
                )
            )
    return problems


def _placement_problems(graph: ResourceGraph, compute: Node, silo: str) -> list[tuple[str, str]]:
    if compute.get("properties", "computeType") == "Kubernetes":
        return _cluster_problems(graph, compute, silo)
    problems: list[tuple[str, str]] = []
    region = graph.silo_region(silo)
    # Nodes run in properties.computeLocation; the resource itself lives with the workspace.
    location = compute.get("properties", "computeLocation") or compute.get("location")
    if region is not None and _region(location) != _region(region):
        problems.append(
            (
                f"runs its nodes in region {location!r}, but silo '{silo}' is in {region!r}.",
                f"Set the compute's properties.computeLocation to {region!r}.",
            )
        )
    inner = compute.get("properties", "properties") or {}
    subnet_id = inner.get("subnet", {}).get("id") if isinstance(inner, Mapping) else None
    silo_vnets = [v for v in graph.of_type(VIRTUAL_NETWORK) if silo_of(v) == silo]
    if subnet_id:
        subnet = graph.find_subnet(subnet_id)
        if subnet is None:
            problems.append(
                (
                    f"is in subnet {subnet_id!r}, which is not in this sandbox.",
                    f"Put it in silo '{silo}''s compute subnet.",
                )
            )
        elif subnet.silo != silo:
            problems.append(
                (
                    f"is in subnet '{subnet.name}' of VNet '{subnet.vnet.arm_name}', which "
                    f"belongs to '{subnet.silo or side_of(subnet.vnet) or 'nobody'}'.",
                    f"Put it in silo '{silo}''s own compute subnet.",
                )
            )
    elif silo_vnets:
        problems.append(
            (
                f"has no subnet although silo '{silo}' has VNet '{silo_vnets[0].arm_name}'.",
                f"Set properties.subnet.id to silo '{silo}''s compute subnet.",
            )
        )
    return problems


def scale_problems(graph: ResourceGraph, compute: Node) -> list[tuple[str, str]]:
    """(problem, fix) for idle nodes and public IPs; needs only the compute and blueprint."""
    problems: list[tuple[str, str]] = []
    if compute.get("properties", "computeType") != "AmlCompute":
        return problems
    inner = compute.get("properties", "properties") or {}
    scale = inner.get("scaleSettings") if isinstance(inner, Mapping) else None
    min_nodes = scale.get("minNodeCount", 0) if isinstance(scale, Mapping) else 0
    if min_nodes not in (0, None):
        problems.append(
            (
                f"keeps {min_nodes} node(s) running when idle.",
                "Set scaleSettings.minNodeCount=0 so an idle sandbox costs nothing.",
            )
        )
    if graph.private_nodes:
        public_ip = inner.get("enableNodePublicIp") if isinstance(inner, Mapping) else None
        if public_ip is not False:
            problems.append(
                (
                    f"enableNodePublicIp is {public_ip!r} in blueprint "
                    f"'{graph.blueprint}', whose computes have no public IPs (Azure's default is a "
                    "public IP per node).",
                    "Set enableNodePublicIp=False.",
                )
            )
    return problems


def check_compute_placement(graph: ResourceGraph) -> list[Violation]:
    """Report every silo compute that runs as, or where, it must not."""
    found: list[Violation] = []
    for compute in graph.of_type(COMPUTE):
        if side_of(compute) is None:
            found.append(
                Violation.at(
                    ID,
                    compute,
                    f"has no '{TAG_ROLE}' tag, so nothing can tell whose compute it is.",
                    "Declare computes through the Orchestrator/Silo components, which tag them.",
                )
            )
            continue
        if side_of(compute) != ROLE_SILO:
            # The orchestrator's cluster must also cost nothing idle and stay private.
            problems = scale_problems(graph, compute)
            found += [Violation.at(ID, compute, problem, fix) for problem, fix in problems]
            continue
        silo = silo_of(compute)
        if silo is None:
            found.append(
                Violation.at(
                    ID,
                    compute,
                    f"is a silo compute without a '{TAG_SILO}' tag.",
                    "Declare it through the Silo component, which tags it with the silo name.",
                )
            )
            continue
        problems = _identity_problems(graph, compute, silo)
        problems += _placement_problems(graph, compute, silo)
        problems += scale_problems(graph, compute)
        found += [Violation.at(ID, compute, problem, fix) for problem, fix in problems]
    return found


check = check_compute_placement
