"""Invariant 2: the orchestrator's identities hold no role on any silo storage.

That covers the orchestrator's user-assigned identity and any system identity of an
orchestrator resource (the Azure ML workspace's above all), with any role, even Reader, at
any scope that reaches a silo's storage account.
"""

from __future__ import annotations

from components.conventions import PURPOSE_SILO_DATA, ROLE_ORCHESTRATOR
from policies.graph import WORKSPACE, Principal, ResourceGraph, purpose_of, silo_of
from policies.violation import Violation

ID = "orchestrator-no-silo-access"
TITLE = "The orchestrator identity holds no role on any silo storage"


def is_orchestrator(principal: Principal) -> bool:
    """The orchestrator UAI, or the system identity of an orchestrator resource."""
    if principal.node is None:
        return False
    return principal.side == ROLE_ORCHESTRATOR or principal.node.type == WORKSPACE


def check_orchestrator_no_silo_access(graph: ResourceGraph) -> list[Violation]:
    """Report every role an orchestrator identity holds over a silo's storage."""
    found: list[Violation] = []
    for grant in graph.grants:
        if not is_orchestrator(grant.principal):
            continue
        for target in grant.targets:
            if purpose_of(target.account) != PURPOSE_SILO_DATA:
                continue
            found.append(
                Violation.at(
                    ID,
                    grant.assignment,
                    f"grants {grant.principal.label} the role '{grant.role}' at "
                    f"{target.level} scope, which reaches silo '{silo_of(target.account)}' "
                    f"storage '{target.account.arm_name}'; the orchestrator must see only "
                    "model updates, never silo storage.",
                    "Remove this role assignment; let the silo's own compute read its data.",
                )
            )
    return found
