"""Rule 6: whoever submits jobs holds data roles on the workspace's default storage.

Source: Azure ML docs, "Disable shared key access for the workspace's storage account": with
shared keys off and identity-based system datastores, users need Storage Blob Data
Contributor and Storage File Data Privileged Contributor on that account. azure-ai-ml uploads
the code snapshot with the submitter's own credential, straight to it; subscription Owner
has no data actions, so it is not enough.
"""

from __future__ import annotations

from components.vocabulary import builtin_roles as names
from policies import roles
from policies.graph import ResourceGraph
from policies.violation import Violation

NUMBER = 6
ID = "azure-6-submitter-storage-roles"
TITLE = (
    "Submitters hold Blob Data Contributor and File Data Privileged Contributor on the "
    "workspace storage"
)
SOURCE = "Azure ML docs: disable shared key access for the workspace storage account"
UNVERIFIED = False

NEEDED = (
    (names.BLOB_DATA_CONTRIBUTOR, {names.BLOB_DATA_CONTRIBUTOR, names.BLOB_DATA_OWNER}),
    (names.FILE_DATA_PRIVILEGED_CONTRIBUTOR, {names.FILE_DATA_PRIVILEGED_CONTRIBUTOR}),
)


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    submitters = sorted(graph.submitter_ids)
    for workspace in graph.workspaces():
        storage = graph.find(workspace.get("storageAccount"))
        if storage is None or storage.get("allowSharedKeyAccess") is not False:
            continue
        for principal_id in submitters:
            held = {
                roles.role_name(g.role_definition_id)
                for g in graph.grants_of(principal_id)
                if any(t.account is storage and t.container is None for t in g.targets)
            }
            for role, accepted in NEEDED:
                if held & accepted:
                    continue
                found.append(
                    Violation.at(
                        ID,
                        storage,
                        f"is workspace '{workspace.arm_name}''s storage with shared keys off, "
                        f"but submitter {principal_id} holds no {role} on it; uploading job "
                        "code would be refused (403).",
                        f"Grant {role} on this account to the submitter (fl-sandbox:submitters "
                        "does it).",
                    )
                )
    return found
