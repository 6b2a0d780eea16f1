"""Who holds which role on which storage: the access matrix of a sandbox.

Derived from the same resolved grants the invariants check, so what the plan prints is what
was checked. Identities are named the way the federation names them (``silo:<name>
identity``, ``orchestrator identity`` (the workspace's), ``orchestrator jobs identity``,
``workspace system identity``); people and groups appear as external principals with the
silo they belong to, if any, and ``(submitter)`` when they submit jobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from components.vocabulary.conventions import (
    PURPOSE_JOBS,
    PURPOSE_MODELS,
    PURPOSE_SILO_DATA,
    PURPOSE_WORKSPACE,
    ROLE_ORCHESTRATOR,
)
from policies.graph import WORKSPACE, Grant, Node, Principal, ResourceGraph, purpose_of, silo_of


@dataclass(frozen=True)
class AccessEntry:
    """One role one principal holds over one storage account or container (or elsewhere)."""

    principal: str
    principal_kind: str
    principal_silo: str | None
    target: str
    target_purpose: str | None
    target_silo: str | None
    account: str | None
    container: str | None
    role: str
    scope_level: str
    assignment: str


def principal_label(
    principal: Principal, member_of: str | None = None, submitter: bool = False
) -> str:
    """A principal as the federation names it."""
    node = principal.node
    if node is None:
        suffix = f" (member-of={member_of})" if member_of else ""
        suffix += " (submitter)" if submitter else ""
        return f"external {principal.principal_id}{suffix}"
    if principal.kind == "identity":
        if principal.silo:
            return f"silo:{principal.silo} identity"
        if principal.side == ROLE_ORCHESTRATOR:
            jobs = purpose_of(node) == PURPOSE_JOBS
            return "orchestrator jobs identity" if jobs else "orchestrator identity"
        return f"identity {node.arm_name}"
    if node.type == WORKSPACE:
        return "workspace system identity"
    owner = f"silo:{principal.silo} " if principal.silo else ""
    return f"{owner}{node.type.rsplit(':', 1)[-1]} {node.arm_name} system identity"


def storage_label(account: Node, container: str | None = None) -> str:
    """A storage account (or container) as the federation names it."""
    purpose = purpose_of(account)
    if purpose == PURPOSE_SILO_DATA:
        base = f"silo:{silo_of(account)} storage ({account.arm_name})"
    elif purpose == PURPOSE_MODELS:
        base = f"model store ({account.arm_name})"
    elif purpose == PURPOSE_WORKSPACE:
        base = f"workspace storage ({account.arm_name})"
    else:
        base = f"storage {account.arm_name}"
    return f"{base}/{container}" if container else base


def _entries(graph: ResourceGraph, grant: Grant) -> list[AccessEntry]:
    submitter = grant.principal.principal_id.lower() in graph.submitter_ids
    who = principal_label(grant.principal, grant.member_of, submitter)
    common: dict[str, Any] = {
        "principal": who,
        "principal_kind": grant.principal.kind,
        "principal_silo": grant.principal.silo or grant.member_of,
        "role": grant.role,
        "assignment": grant.assignment.name,
    }
    if not grant.targets:
        node = graph.find(grant.scope)
        target = node.label if node is not None else grant.scope
        return [
            AccessEntry(
                **common,
                target=target,
                target_purpose=None,
                target_silo=silo_of(node) if node is not None else None,
                account=None,
                container=None,
                scope_level="resource" if node is not None else "scope",
            )
        ]
    return [
        AccessEntry(
            **common,
            target=storage_label(t.account, t.container),
            target_purpose=purpose_of(t.account),
            target_silo=silo_of(t.account),
            account=t.account.arm_name,
            container=t.container,
            scope_level=t.level,
        )
        for t in grant.targets
    ]


def access_entries(graph: ResourceGraph) -> list[AccessEntry]:
    """Every (principal, target, role), storage targets first, in a stable order."""
    entries = [e for grant in graph.grants for e in _entries(graph, grant)]
    return sorted(entries, key=lambda e: (e.account is None, e.principal, e.target, e.role))


def access_matrix(graph: ResourceGraph) -> dict[str, Any]:
    """JSON-ready matrix: entries, and principal -> storage target -> roles."""
    entries = access_entries(graph)
    matrix: dict[str, dict[str, list[str]]] = {}
    for entry in entries:
        if entry.account is None:
            continue
        roles = matrix.setdefault(entry.principal, {}).setdefault(entry.target, [])
        if entry.role not in roles:
            roles.append(entry.role)
    return {"entries": [asdict(e) for e in entries], "matrix": matrix}
