"""Rule 11: the workspace's user-assigned identity holds Azure ML's documented roles.

Source: Azure ML docs, "Set up authentication between Azure Machine Learning and other
services" (user-assigned managed identity for the workspace): Contributor on the workspace,
Contributor on its storage (Storage Account Contributor covers the account), Contributor and
Key Vault Administrator on its key vault; plus, with shared keys off, the two storage data
roles, and Contributor on its registry and Application Insights. *Which of these are
strictly required is unverified*; the ones on associated resources must exist before the
workspace is created, so the workspace waits for them.
"""

from __future__ import annotations

from components.vocabulary import builtin_roles as names
from policies import roles
from policies.graph import Node, ResourceGraph
from policies.violation import Violation

NUMBER = 11
ID = "azure-11-workspace-identity-roles"
TITLE = "The workspace identity holds its documented roles, before the workspace is created"
SOURCE = "Azure ML docs: user-assigned managed identity for the workspace (roles table)"
UNVERIFIED = True

MANAGE = {names.CONTRIBUTOR, names.OWNER}
NEEDED: tuple[tuple[str, str, frozenset[str], bool], ...] = (
    # (workspace property naming the resource, role wanted, roles that satisfy, before creation)
    (
        "storageAccount",
        names.STORAGE_ACCOUNT_CONTRIBUTOR,
        frozenset({names.STORAGE_ACCOUNT_CONTRIBUTOR, *MANAGE}),
        True,
    ),
    (
        "storageAccount",
        names.BLOB_DATA_CONTRIBUTOR,
        frozenset({names.BLOB_DATA_CONTRIBUTOR, names.BLOB_DATA_OWNER}),
        True,
    ),
    (
        "storageAccount",
        names.FILE_DATA_PRIVILEGED_CONTRIBUTOR,
        frozenset({names.FILE_DATA_PRIVILEGED_CONTRIBUTOR}),
        True,
    ),
    ("keyVault", names.KEY_VAULT_ADMINISTRATOR, frozenset({names.KEY_VAULT_ADMINISTRATOR}), True),
    ("keyVault", names.CONTRIBUTOR, frozenset(MANAGE), True),
    ("containerRegistry", names.CONTRIBUTOR, frozenset(MANAGE), True),
    ("applicationInsights", names.CONTRIBUTOR, frozenset(MANAGE), True),
    ("id", names.CONTRIBUTOR, frozenset(MANAGE), False),
)


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for workspace in graph.workspaces():
        identity = graph.find(workspace.get("primaryUserAssignedIdentity"))
        principal = identity.get("principalId") if identity is not None else None
        if identity is None or not isinstance(principal, str):
            continue  # a system-assigned workspace identity: Azure grants its own roles
        grants = graph.grants_of(principal)
        for prop, role, accepted, before in NEEDED:
            target: Node | None = workspace if prop == "id" else graph.find(workspace.get(prop))
            if target is None:
                continue
            holding = [
                g
                for g in grants
                if roles.role_name(g.role_definition_id) in accepted
                and graph.scope_covers(g.scope, target) is not None
            ]
            if not holding:
                found.append(
                    Violation.at(
                        ID,
                        workspace,
                        f"runs as {identity.label}, which holds no {role} on "
                        f"{target.label} (documented for user-assigned workspace identities).",
                        f"Grant {role} on {target.arm_name} to {identity.arm_name}.",
                    )
                )
            elif before and not any(graph.waits_for(workspace, g.assignment) for g in holding):
                found.append(
                    Violation.at(
                        ID,
                        workspace,
                        f"is not created after its identity's {role} on {target.arm_name}; "
                        "the workspace needs it during creation.",
                        "Make the workspace depend on that role assignment.",
                    )
                )
    return found
