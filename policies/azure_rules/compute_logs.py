"""Rule 12: computes write job logs and MLflow artifacts to the workspace storage, in its
``azureml`` container only.

Source: Microsoft's table for identity-based data access ("Storage Blob Data Contributor" for
the compute identity on the workspace storage when system datastores use identity auth); a
read-only role there may break logging (*unverified*). Granted at account scope it would let
silo code write anywhere in the orchestrator's storage, so it is scoped to the ``azureml``
container, never the account.
"""

from __future__ import annotations

from components.vocabulary import builtin_roles as names
from components.vocabulary.conventions import WORKSPACE_LOGS_CONTAINER
from policies import roles
from policies.graph import COMPUTE, ResourceGraph
from policies.invariants.least_privilege import runs_fl_code
from policies.violation import Violation

NUMBER = 12
ID = "azure-12-compute-log-writes"
TITLE = "FL computes may write logs to the workspace storage's azureml container, only there"
SOURCE = "Azure ML docs: identity-based data access roles table; unverified for logging"
UNVERIFIED = True

WRITE = frozenset(
    names.BUILTIN_ROLES[n].lower() for n in (names.BLOB_DATA_CONTRIBUTOR, names.BLOB_DATA_OWNER)
)


def check(graph: ResourceGraph) -> list[Violation]:
    found: list[Violation] = []
    stores = {
        id(s): s
        for w in graph.workspaces()
        if (s := graph.find(w.get("storageAccount"))) is not None
    }
    for compute in graph.of_type(COMPUTE):
        if not runs_fl_code(compute):
            continue
        for identity in graph.compute_identities(compute):
            principal = identity.get("principalId")
            if not isinstance(principal, str):
                continue
            for storage in stores.values():
                writes = [
                    (g, t)
                    for g in graph.grants_of(principal)
                    if roles.role_guid(g.role_definition_id) in WRITE
                    for t in g.targets
                    if t.account is storage
                ]
                for grant, target in writes:
                    if target.container is None:
                        found.append(
                            Violation.at(
                                ID,
                                grant.assignment,
                                f"lets {identity.label} (compute '{compute.arm_name}') write "
                                f"anywhere in workspace storage '{storage.arm_name}' "
                                f"({target.level} scope).",
                                f"Scope the write role to the '{WORKSPACE_LOGS_CONTAINER}' "
                                "container.",
                            )
                        )
                if not any(t.container == WORKSPACE_LOGS_CONTAINER for _, t in writes):
                    found.append(
                        Violation.at(
                            ID,
                            compute,
                            f"runs as {identity.label}, which cannot write job logs and MLflow "
                            f"artifacts to container '{WORKSPACE_LOGS_CONTAINER}' of workspace "
                            f"storage '{storage.arm_name}'.",
                            "Grant Storage Blob Data Contributor on that container.",
                        )
                    )
    return found
