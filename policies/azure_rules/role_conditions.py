"""Rule 40: a role assignment with a condition sets ``conditionVersion: 2.0`` and narrows a
Blob Storage data role at storage scope.

Source: Microsoft Learn, "Azure role assignment condition format and syntax" (conditions are
written in version 2.0; ``conditionVersion`` is required with a condition) and "What is Azure
attribute-based access control (Azure ABAC)?" (conditions apply to the data actions of Azure
Blob Storage and Queue roles; a condition on another role's actions has nothing to narrow, so
the role would be granted in full). fl-sandbox uses one for the test-set uploaders
(``dataUploaders.global``: blob paths ``fl-sandbox/*/test/*`` only).
"""

from __future__ import annotations

from components.vocabulary import builtin_roles as names
from policies import roles
from policies.graph import ROLE_ASSIGNMENT, ResourceGraph
from policies.violation import Violation

NUMBER = 40
ID = "azure-40-role-conditions"
TITLE = "Conditional role assignments: version 2.0, a Blob data role, storage scope"
SOURCE = "Microsoft Learn: Azure role assignment condition format and syntax; Azure ABAC"
UNVERIFIED = False

BLOB_DATA_ROLES = frozenset(
    names.BUILTIN_ROLES[n].lower()
    for n in (names.BLOB_DATA_READER, names.BLOB_DATA_CONTRIBUTOR, names.BLOB_DATA_OWNER)
)


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    for assignment in graph.of_type(ROLE_ASSIGNMENT):
        if not assignment.get("condition"):
            continue
        version = assignment.get("conditionVersion")
        if version != "2.0":
            found.append(
                Violation.at(
                    ID,
                    assignment,
                    f"has a condition with conditionVersion {version!r}; ARM needs '2.0'.",
                    "Set conditionVersion='2.0' on the role assignment.",
                )
            )
        role = roles.role_guid(str(assignment.get("roleDefinitionId") or ""))
        if role not in BLOB_DATA_ROLES:
            found.append(
                Violation.at(
                    ID,
                    assignment,
                    f"narrows role {roles.role_name(str(assignment.get('roleDefinitionId')))!r} "
                    "with a blob condition; only Blob Storage data roles are narrowed by one, "
                    "so this role would hold in full.",
                    "Put the condition on a Storage Blob Data role, or drop it.",
                )
            )
        if not graph.scope_targets(assignment.get("scope")):
            found.append(
                Violation.at(
                    ID,
                    assignment,
                    "has a blob condition but its scope reaches no storage account of the sandbox.",
                    "Scope it to the storage account or container it is meant for.",
                )
            )
    return found
