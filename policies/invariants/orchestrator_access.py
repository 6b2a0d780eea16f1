"""Invariant 2: the orchestrator side holds no role on any silo storage.

That covers the orchestrator's user-assigned identities (the workspace's and its jobs'), any
system identity of an orchestrator resource (the Azure ML workspace's above all), and every
principal that submits jobs: they drive the orchestrator, and a submitter who could read a
silo's data would carry it out past the silo boundary. Any role, even Reader, at any scope
that reaches a silo's storage account is a violation, except a role with no action on
storage at all (Azure Relay Owner, which Azure ML's attach needs on an Arc cluster's resource
group: Azure's rule 20).
"""

from __future__ import annotations

from components.vocabulary.builtin_roles import NO_STORAGE_ACTIONS
from components.vocabulary.conventions import PURPOSE_SILO_DATA, ROLE_ORCHESTRATOR
from policies.graph import WORKSPACE, Grant, Principal, ResourceGraph, purpose_of, silo_of
from policies.violation import Violation

NUMBER = 2
ID = "orchestrator-no-silo-access"
TITLE = "The orchestrator's identities and the job submitters hold no role on silo storage"


def is_orchestrator(principal: Principal) -> bool:
    """An orchestrator user-assigned identity, or the system identity of one of its resources."""
    if principal.node is None:
        return False
    return principal.side == ROLE_ORCHESTRATOR or principal.node.type == WORKSPACE


def _who(graph: ResourceGraph, grant: Grant) -> str | None:
    """How the principal belongs to the orchestrator side, or None when it does not."""
    if is_orchestrator(grant.principal):
        return grant.principal.label
    if grant.principal.principal_id.lower() in graph.submitter_ids:
        return f"job submitter {grant.principal.principal_id}"
    return None


def check_orchestrator_no_silo_access(graph: ResourceGraph) -> list[Violation]:
    """Report every role the orchestrator side holds over a silo's storage."""
    found: list[Violation] = []
    for grant in graph.grants:
        who = _who(graph, grant)
        if who is None or grant.role in NO_STORAGE_ACTIONS:
            continue
        for target in grant.targets:
            if purpose_of(target.account) != PURPOSE_SILO_DATA:
                continue
            found.append(
                Violation.at(
                    ID,
                    grant.assignment,
                    f"grants {who} the role '{grant.role}' at {target.level} scope, which "
                    f"reaches silo '{silo_of(target.account)}' storage "
                    f"'{target.account.arm_name}'; the orchestrator side must see only model "
                    "updates, never silo storage.",
                    "Remove this role assignment; let the silo's own compute read its data "
                    "(and give silo access to a principal that does not submit jobs).",
                )
            )
    return found


check = check_orchestrator_no_silo_access
