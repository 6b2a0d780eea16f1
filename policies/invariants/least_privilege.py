"""Invariant 7: the computes that run FL code hold data roles only.

Every compute that runs FL steps (each silo's, the orchestrator's aggregation cluster) runs
as an identity whose roles are all blob data roles or AcrPull. So the code that touches
models and data cannot push an image into the registry every silo pulls from, change a
resource (re-enable shared keys on a storage account, open its network), read the key vault
or grant itself anything. It never runs as a workspace's primary identity, which holds those
rights for the workspace's own work; only the image-build cluster (``fl-sandbox-purpose:
image-build``), where no FL step runs, may.
"""

from __future__ import annotations

from components.vocabulary import builtin_roles
from components.vocabulary.conventions import PURPOSE_IMAGE_BUILD
from policies import roles
from policies.graph import COMPUTE, WORKSPACE, Node, ResourceGraph, purpose_of
from policies.violation import Violation

NUMBER = 7
ID = "compute-least-privilege"
TITLE = "Computes running FL code hold only blob data roles and AcrPull"

ALLOWED_ROLES = frozenset(
    builtin_roles.BUILTIN_ROLES[name].lower()
    for name in (
        builtin_roles.BLOB_DATA_READER,
        builtin_roles.BLOB_DATA_CONTRIBUTOR,
        builtin_roles.ACR_PULL,
    )
)


def runs_fl_code(compute: Node) -> bool:
    """Every compute but the image builder runs FL steps (or could be given one)."""
    return purpose_of(compute) != PURPOSE_IMAGE_BUILD


def _primary_identities(graph: ResourceGraph) -> dict[str, Node]:
    """Normalised identity id -> the workspace it is the primary identity of."""
    found: dict[str, Node] = {}
    for workspace in graph.of_type(WORKSPACE):
        identity = graph.find(workspace.get("primaryUserAssignedIdentity"))
        if identity is not None:
            found[identity.urn] = workspace
    return found


def check_compute_least_privilege(graph: ResourceGraph) -> list[Violation]:
    """Report every role beyond blob data and AcrPull held by an FL compute's identity."""
    found: list[Violation] = []
    primaries = _primary_identities(graph)
    for compute in graph.of_type(COMPUTE):
        if not runs_fl_code(compute):
            continue
        for identity in graph.compute_identities(compute):
            workspace = primaries.get(identity.urn)
            if workspace is not None:
                found.append(
                    Violation.at(
                        ID,
                        compute,
                        f"runs as {identity.label}, the primary identity of workspace "
                        f"'{workspace.arm_name}', which may push images and administer the "
                        "key vault.",
                        "Run FL computes as their own identity holding data roles only (the "
                        "orchestrator's jobs identity, a silo's identity).",
                    )
                )
            principal_id = identity.get("principalId")
            if not isinstance(principal_id, str):
                continue
            for grant in graph.grants_of(principal_id):
                if roles.role_guid(grant.role_definition_id) in ALLOWED_ROLES:
                    continue
                found.append(
                    Violation.at(
                        ID,
                        grant.assignment,
                        f"grants '{grant.role}' to {identity.label}, which compute "
                        f"'{compute.arm_name}' runs FL code as; such code could push images, "
                        "change resources or read secrets.",
                        "Grant FL compute identities only Storage Blob Data Reader/Contributor "
                        "on what they read and write, and AcrPull.",
                    )
                )
    return found


check = check_compute_least_privilege
