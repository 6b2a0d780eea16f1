"""Invariant 1: only silo S's identity holds a data-plane role on silo S's storage.

People who belong to silo S (a role assignment described with ``member-of=S``) may hold
data roles on S's storage too, and on no other silo's. A role at resource-group or
subscription scope reaches every storage account inside it, so it counts here as well.
"""

from __future__ import annotations

from components.vocabulary.conventions import (
    MEMBER_OF_MARKER,
    PURPOSE_SILO_DATA,
    ROLE_SILO,
    TAG_PURPOSE,
)
from policies import roles
from policies.graph import Grant, ResourceGraph, purpose_of, silo_of
from policies.violation import Violation

NUMBER = 1
ID = "silo-data-access"
TITLE = "Only silo S's identity holds a data-plane role on silo S's storage"


def _allowed(grant: Grant, silo: str) -> bool:
    principal = grant.principal
    if principal.kind == "identity" and principal.side == ROLE_SILO:
        return principal.silo == silo
    if principal.kind == "external":
        return grant.member_of == silo
    return False


def check_silo_data_access(graph: ResourceGraph) -> list[Violation]:
    """Report every data-capable role on a silo's storage held by anyone but that silo."""
    found: list[Violation] = []
    for account in graph.storage_accounts:
        if purpose_of(account) is None:
            found.append(
                Violation.at(
                    ID,
                    account,
                    f"has no '{TAG_PURPOSE}' tag, so nothing can tell whose data it holds.",
                    "Declare storage through the Orchestrator/Silo components, which tag it.",
                )
            )
        elif purpose_of(account) == PURPOSE_SILO_DATA and silo_of(account) is None:
            found.append(
                Violation.at(
                    ID,
                    account,
                    "holds silo data but carries no silo tag, so its owner is unknown.",
                    "Declare it through the Silo component, which tags it with the silo name.",
                )
            )
    for grant in graph.grants:
        if not roles.can_touch_data(grant.role_definition_id):
            continue
        for target in grant.targets:
            silo = silo_of(target.account)
            if purpose_of(target.account) != PURPOSE_SILO_DATA or silo is None:
                continue
            if _allowed(grant, silo):
                continue
            found.append(
                Violation.at(
                    ID,
                    grant.assignment,
                    f"grants {grant.principal.label} the role '{grant.role}' at "
                    f"{target.level} scope, which reaches silo '{silo}' storage "
                    f"'{target.account.arm_name}'; only silo '{silo}''s identity (or a person "
                    f"marked {MEMBER_OF_MARKER}{silo}) may hold a data role there.",
                    "Remove this role assignment, or scope it to storage the principal may use.",
                )
            )
    return found


check = check_silo_data_access
