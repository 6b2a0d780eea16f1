"""Rule 30: no compute a submitter can choose runs as an identity with control or secret roles.

Source: Azure ML docs, "Manage access to Azure Machine Learning workspaces"
(https://learn.microsoft.com/azure/machine-learning/how-to-assign-roles): AzureML Data
Scientist "can perform all actions within an Azure Machine Learning workspace, except for
creating or deleting compute resources and modifying the workspace itself", so every submitter
may send a job to any compute of the workspace. A job with ``identity: managed`` gets the
compute's managed identity ("Set up authentication between Azure Machine Learning and other
services", https://learn.microsoft.com/azure/machine-learning/how-to-identity-based-service-authentication:
the compute cluster's managed identity is used for identity-based data access); on a
Kubernetes compute the job uses the identity assigned to the compute at attach, without a
``client_id`` ("In the case of kubernetes cluster compute, the ManagedIdentityCredential object
should be provided without any client_id", same page). The workspace identity's attach roles
(rule 20: AKS Cluster Admin, Kubernetes Extension Contributor) are therefore not reachable
through a Kubernetes compute unless that compute runs as the workspace identity. So each
compute's identity is reachable by every submitter, and must hold no control-plane or secret
role; AcrPush only on the workspace's image-build compute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components.vocabulary import builtin_roles as names
from policies import roles
from policies.graph import COMPUTE, Node, ResourceGraph
from policies.violation import Violation

NUMBER = 30
ID = "azure-30-compute-identity-reach"
TITLE = "A compute any submitter can choose runs as no identity with control or secret roles"
SOURCE = (
    "Azure ML docs: manage workspace access, AzureML Data Scientist "
    "(https://learn.microsoft.com/azure/machine-learning/how-to-assign-roles); "
    "identity-based service authentication"
)
UNVERIFIED = False

ACR_PUSH = "AcrPush"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
"""Key Vault Secrets Officer's built-in id (not in the sandbox's role table: never granted)."""
FORBIDDEN = frozenset(
    {
        names.KEY_VAULT_ADMINISTRATOR,
        names.OWNER,
        names.CONTRIBUTOR,
        names.USER_ACCESS_ADMINISTRATOR,
        names.RBAC_ADMINISTRATOR,
        names.AKS_CLUSTER_ADMIN,
        names.KUBERNETES_EXTENSION_CONTRIBUTOR,
        names.STORAGE_ACCOUNT_CONTRIBUTOR,
        names.RELAY_OWNER,
    }
)


@dataclass(frozen=True)
class Reach:
    """What a submitter reaches by choosing one compute."""

    compute: Node
    kind: str
    identity: str
    roles: tuple[tuple[str, str], ...]
    """(role name, scope) pairs the identity holds."""
    principal: str | None = None
    """The identity's principal id (None when the compute runs as none)."""


def _workspace_of(graph: ResourceGraph, compute: Node) -> Node | None:
    name = str(compute.get("workspaceName") or "").lower()
    found = [w for w in graph.workspaces() if w.arm_name.lower() == name]
    return found[0] if len(found) == 1 else None


def _role(role_definition_id: str) -> str:
    if roles.role_guid(role_definition_id) == KEY_VAULT_SECRETS_OFFICER:
        return "Key Vault Secrets Officer"
    return roles.role_name(role_definition_id)


def reach(graph: ResourceGraph) -> list[Reach]:
    """Per compute: the identity a job on it runs as, and that identity's roles."""
    rows = []
    for compute in graph.of_type(COMPUTE):
        props = compute.get("properties")
        kind = str(props.get("computeType") or "") if isinstance(props, Mapping) else ""
        identities = graph.compute_identities(compute)
        if not identities:
            rows.append(Reach(compute, kind, "(none)", ()))
        for identity in identities:
            principal = identity.get("principalId")
            held = graph.grants_of(principal) if isinstance(principal, str) else []
            rows.append(
                Reach(
                    compute,
                    kind,
                    identity.arm_name,
                    tuple(sorted((_role(g.role_definition_id), g.scope) for g in held)),
                    principal if isinstance(principal, str) else None,
                )
            )
    return rows


def _places(
    graph: ResourceGraph, principal: str | None, write: bool
) -> list[tuple[str, str | None]]:
    """(account, container) pairs ``principal`` may read (or, ``write``, write) blobs in;
    container None: the whole account."""
    found: list[tuple[str, str | None]] = []
    for grant in graph.grants_of(principal) if principal else []:
        if not roles.can_touch_data(grant.role_definition_id):
            continue
        if write and roles.is_blob_read_only(grant.role_definition_id):
            continue
        for target in grant.targets:
            place = (target.account.arm_name, target.container)
            if place not in found:
                found.append(place)
    return found


def _registries(graph: ResourceGraph, principal: str | None, write: bool) -> list[str]:
    """Container registries ``principal`` pulls images from (``write``: pushes to): a job
    that can push replaces the images every other compute runs."""
    roles_ = {ACR_PUSH} if write else {ACR_PUSH, "AcrPull"}
    found: list[str] = []
    for grant in graph.grants_of(principal) if principal else []:
        if _role(grant.role_definition_id) in roles_:
            label = f"{grant.scope.rstrip('/').rsplit('/', 1)[-1]} (images)"
            if label not in found:
                found.append(label)
    return found


def _label(place: tuple[str, str | None]) -> str:
    return f"{place[0]}/{place[1]}" if place[1] else place[0]


def _submitters_read(graph: ResourceGraph) -> list[tuple[str, str | None]]:
    """Where any submitter may read blobs: what a job's output there hands them."""
    found: list[tuple[str, str | None]] = []
    for grant in graph.grants:
        if grant.submitter and roles.can_touch_data(grant.role_definition_id):
            found += [(t.account.arm_name, t.container) for t in grant.targets]
    return found


def _overlaps(a: tuple[str, str | None], b: tuple[str, str | None]) -> bool:
    return a[0] == b[0] and (a[1] is None or b[1] is None or a[1] == b[1])


RUN_HISTORY = "workspace run history (metrics, parameters, logs)"
"""A channel from every compute to every submitter that no storage role governs: a job
reports to its workspace (``mlflow``, stdout), and AzureML Data Scientist reads every run."""


def compute_identity_table(graph: ResourceGraph) -> list[dict[str, object]]:
    """The plan's answer to "which identity does a submitter reach by choosing each
    compute?": one row per compute and identity, its roles, what this rule refuses, and
    what a job there can do with data (audit B3): the data it reads, the data it can write
    or delete (a silo compute can overwrite its silo's raw data), the places it can write
    that every submitter reads (a job's outputs and logs, and always the workspace's run
    history: metrics, parameters and logs go to the workspace service, which every
    submitter reads with no storage role), and whether it has an outbound path to the
    internet. Submitted code is trusted code: a submitter reaches a silo's data through
    that silo's compute, with no role on the data."""
    from policies.network_paths import compute_origin

    refused: dict[str, list[str]] = {}
    for violation in check(graph):
        refused.setdefault(violation.resource_name, []).append(violation.problem)
    submitters_read = _submitters_read(graph)
    rows: list[dict[str, object]] = []
    for row in reach(graph):
        writes = _places(graph, row.principal, write=True)
        origin = compute_origin(graph, row.compute)
        rows.append(
            {
                "compute": row.compute.arm_name,
                "kind": row.kind,
                "identity": row.identity,
                "roles": [
                    {"role": role, "on": scope.rstrip("/").rsplit("/", 1)[-1]}
                    for role, scope in row.roles
                ],
                "reads": [_label(p) for p in _places(graph, row.principal, write=False)]
                + _registries(graph, row.principal, write=False),
                "writes": [_label(p) for p in writes]
                + _registries(graph, row.principal, write=True),
                "hands_to_submitters": [
                    _label(p) for p in writes if any(_overlaps(p, s) for s in submitters_read)
                ]
                + [RUN_HISTORY],
                "internet_egress": origin.kind == "internet" or origin.outbound,
                "refused": refused.get(row.compute.name, []),
            }
        )
    return rows


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for row in reach(graph):
        workspace = _workspace_of(graph, row.compute)
        builder = workspace.get("imageBuildCompute") if workspace is not None else None
        for role, scope in row.roles:
            allowed = role == ACR_PUSH and row.compute.arm_name == builder
            if role not in FORBIDDEN | {ACR_PUSH, "Key Vault Secrets Officer"} or allowed:
                continue
            found.append(
                Violation.at(
                    ID,
                    row.compute,
                    f"runs jobs as {row.identity}, which holds {role} on {scope}; any "
                    "submitter (AzureML Data Scientist) may choose this compute and get "
                    "that token.",
                    f"Run '{row.compute.arm_name}' as an identity with data roles only, and "
                    f"move {role} to an identity no compute runs as.",
                )
            )
    return found
