"""Invariant 3: silos are isolated from each other, in their storage and in the model store.

A silo identity holds no role on another silo's storage. On the orchestrator's model store it
may write only its own container (named after the silo, plain or ``silo-<name>``) and read the
``global`` container; nothing at account (or wider) scope, so no silo reads another silo's
updates. In the ``signing-keys`` container, where secure aggregation's public keys live, a silo
may read, and write only under the ABAC condition that names its own key blob
(``components.permissions.signing_key_condition``).
"""

from __future__ import annotations

from components.permissions import signing_key_condition
from components.vocabulary.conventions import (
    GLOBAL_MODELS_CONTAINER,
    PURPOSE_MODELS,
    PURPOSE_SILO_DATA,
    ROLE_SILO,
    SIGNING_KEYS_CONTAINER,
)
from policies import roles
from policies.graph import Grant, ResourceGraph, StorageTarget, purpose_of, silo_of
from policies.violation import Violation

NUMBER = 3
ID = "cross-silo-isolation"
TITLE = "No silo identity reaches another silo's storage or updates"


def own_containers(silo: str) -> frozenset[str]:
    """Model-store container names a silo's updates may live in."""
    return frozenset({silo, f"silo-{silo}"})


def _problem(grant: Grant, silo: str, target: StorageTarget) -> str | None:
    purpose = purpose_of(target.account)
    account = target.account.arm_name
    if purpose == PURPOSE_SILO_DATA:
        owner = silo_of(target.account)
        if owner != silo:
            return f"reaches silo '{owner}' storage '{account}' at {target.level} scope"
        return None
    if purpose != PURPOSE_MODELS:
        return None
    if target.container is None:
        return (
            f"reaches the whole model store '{account}' at {target.level} scope, "
            "including every other silo's updates"
        )
    if target.container in own_containers(silo):
        return None
    if target.container == SIGNING_KEYS_CONTAINER:
        if roles.is_blob_read_only(grant.role_definition_id):
            return None
        if grant.assignment.get("condition") == signing_key_condition(silo):
            return None
        return (
            f"may write other silos' keys in the '{SIGNING_KEYS_CONTAINER}' container of model "
            f"store '{account}' (a silo writes only its own, by condition)"
        )
    if target.container == GLOBAL_MODELS_CONTAINER:
        if roles.is_blob_read_only(grant.role_definition_id):
            return None
        return (
            f"may write the '{GLOBAL_MODELS_CONTAINER}' container of model store '{account}' "
            "(silos may only read global models)"
        )
    return f"reaches container '{target.container}' of model store '{account}'"


def check_cross_silo_isolation(graph: ResourceGraph) -> list[Violation]:
    """Report every silo identity role outside its own silo storage and model container."""
    found: list[Violation] = []
    for grant in graph.grants:
        principal = grant.principal
        if principal.side != ROLE_SILO or principal.silo is None:
            continue
        for target in grant.targets:
            problem = _problem(grant, principal.silo, target)
            if problem is None:
                continue
            found.append(
                Violation.at(
                    ID,
                    grant.assignment,
                    f"grants silo '{principal.silo}' identity ({principal.label}) the role "
                    f"'{grant.role}', which {problem}.",
                    f"Scope silo '{principal.silo}' roles to its own storage, its own "
                    f"model-store container '{principal.silo}' and read-only "
                    f"'{GLOBAL_MODELS_CONTAINER}'.",
                )
            )
    return found


check = check_cross_silo_isolation
