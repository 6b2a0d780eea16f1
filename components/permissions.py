"""The one declarative permissions table: who gets which built-in role on what, and why.

Every ``azure-native:authorization:RoleAssignment`` in a sandbox is created by ``assign`` from
rows of this table, so the access matrix can be printed and checked against the isolation
invariants before deployment. Grantees and targets are symbolic (``silo:<name>-identity``,
``models-container:silo-<name>``); the builder resolves them to principal ids and ARM scopes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
from pulumi_azure_native import authorization

from components import builtin_roles as roles
from components.access_targets import Target
from components.conventions import GLOBAL_MODELS_CONTAINER, MEMBER_OF_MARKER
from components.naming import silo_container

ORCHESTRATOR_IDENTITY = "orchestrator-identity"
PrincipalType = Literal["User", "Group", "ServicePrincipal"]


def silo_identity(silo: str) -> str:
    """Grantee symbol of a silo's user-assigned identity."""
    return f"silo:{silo}-identity"


def person(principal_id: str) -> str:
    """Grantee symbol of a person, group or app given by object id in the stack file."""
    return f"principal:{principal_id.lower()}"


@dataclass(frozen=True)
class Grant:
    """One row: ``grantee`` gets ``role`` on ``target`` because ``why``."""

    grantee: str
    role: str
    target: Target
    why: str
    principal_type: PrincipalType = "ServicePrincipal"
    member_of: str | None = None
    before_workspace: bool = False
    """Needed before the AML workspace is created (its primary identity's own access)."""

    @property
    def description(self) -> str:
        text = f"fl-sandbox: {self.role} for {self.grantee} on {self.target}: {self.why}"
        if self.member_of is not None:
            text += f" [{MEMBER_OF_MARKER}{self.member_of}]"
        return text

    @property
    def resource_name(self) -> str:
        """A stable Pulumi name: the row's identity (grantee, role, target)."""
        raw = f"ra-{self.grantee}-{self.role}-{self.target}".lower()
        return re.sub(r"[^a-z0-9]+", "-", raw).strip("-")

    def row(self) -> dict[str, str]:
        """The row as plain strings, for printing and stack outputs."""
        return {
            "grantee": self.grantee,
            "role": self.role,
            "target": str(self.target),
            "why": self.why,
            "member_of": self.member_of or "",
        }


def _orchestrator_rows() -> list[Grant]:
    ws_storage = Target("orchestrator-storage")
    rows = [
        (
            roles.BLOB_DATA_CONTRIBUTOR,
            ws_storage,
            "the workspace keeps code snapshots, logs "
            "and outputs in its storage, reached by identity since shared keys are off",
        ),
        (
            roles.FILE_DATA_PRIVILEGED_CONTRIBUTOR,
            ws_storage,
            "the workspace file share (notebooks, snapshots) without shared keys",
        ),
        (
            roles.STORAGE_ACCOUNT_CONTRIBUTOR,
            ws_storage,
            "the workspace manages its default storage (containers, CORS)",
        ),
        (
            roles.KEY_VAULT_ADMINISTRATOR,
            Target("key-vault"),
            "the workspace stores its secrets in its RBAC-mode vault",
        ),
        (
            roles.CONTRIBUTOR,
            Target("container-registry"),
            "the workspace builds and pushes job environment images",
        ),
        (roles.CONTRIBUTOR, Target("app-insights"), "the workspace writes its telemetry"),
    ]
    grants = [
        Grant(ORCHESTRATOR_IDENTITY, role, target, why, before_workspace=True)
        for role, target, why in rows
    ]
    grants.append(
        Grant(
            ORCHESTRATOR_IDENTITY,
            roles.BLOB_DATA_CONTRIBUTOR,
            Target("models-storage"),
            "aggregation on the orchestrator compute reads every silo's update and writes "
            "the global model",
        )
    )
    return grants


def _silo_rows(silo: str) -> list[Grant]:
    me = silo_identity(silo)
    return [
        Grant(
            me,
            roles.BLOB_DATA_CONTRIBUTOR,
            Target("silo-storage", silo=silo),
            f"silo {silo}'s jobs read its training data and write preprocessed data",
        ),
        Grant(
            me,
            roles.BLOB_DATA_CONTRIBUTOR,
            Target("models-container", container=silo_container(silo)),
            f"silo {silo} writes its model updates, only into its own container",
        ),
        Grant(
            me,
            roles.BLOB_DATA_READER,
            Target("models-container", container=GLOBAL_MODELS_CONTAINER),
            f"silo {silo} reads the current global model, read-only",
        ),
        Grant(
            me,
            roles.ACR_PULL,
            Target("container-registry"),
            f"silo {silo}'s compute pulls job images (the registry admin user is off)",
        ),
        Grant(
            me,
            roles.BLOB_DATA_READER,
            Target("orchestrator-storage"),
            f"silo {silo}'s compute downloads job code snapshots from the workspace storage",
        ),
    ]


GRANTS_PER_SILO = len(_silo_rows("s"))
"""Role assignments each silo adds to the table (excluding stack-file extras)."""


def access_table(silos: Sequence[str], extra: Iterable[Grant] = ()) -> list[Grant]:
    """Every role assignment of a sandbox with these silos, plus the stack file's extras."""
    table = _orchestrator_rows()
    for silo in silos:
        table.extend(_silo_rows(silo))
    table.extend(extra)
    return table


def person_grant(
    principal_id: str,
    principal_type: PrincipalType,
    role: str,
    target: Target,
    why: str,
    member_of: str | None,
) -> Grant:
    """A stack-file grant (already checked against the isolation rules by the spec)."""
    return Grant(
        grantee=person(principal_id),
        role=role,
        target=target,
        why=why,
        principal_type=principal_type,
        member_of=member_of,
    )


def assign(
    grants: Iterable[Grant],
    *,
    principals: Mapping[str, pulumi.Input[str]],
    scopes: Mapping[str, pulumi.Input[str]],
    subscription_id: pulumi.Input[str],
    parent: pulumi.Resource,
) -> list[authorization.RoleAssignment]:
    """Create one RoleAssignment per row. ``principals`` maps identity grantees to principal
    ids (people carry theirs in the grantee); ``scopes`` maps ``str(target)`` to ARM ids."""
    created = []
    for grant in grants:
        if grant.grantee.startswith("principal:"):
            principal_id: pulumi.Input[str] = grant.grantee.removeprefix("principal:")
        else:
            principal_id = principals[grant.grantee]
        if grant.target.kind == "subscription":
            scope: pulumi.Input[str] = pulumi.Output.concat("/subscriptions/", subscription_id)
        else:
            scope = scopes[str(grant.target)]
        created.append(
            authorization.RoleAssignment(
                grant.resource_name,
                principal_id=principal_id,
                principal_type=grant.principal_type,
                role_definition_id=pulumi.Output.from_input(subscription_id).apply(
                    lambda sub, role=grant.role: roles.role_definition_id(sub, role)
                ),
                scope=scope,
                description=grant.description,
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    return created


@dataclass(frozen=True)
class AccessControlArgs:
    grants: Sequence[Grant]
    principals: Mapping[str, pulumi.Input[str]]
    scopes: Mapping[str, pulumi.Input[str]]
    subscription_id: pulumi.Input[str]


class AccessControl(pulumi.ComponentResource):
    """The table's role assignments that need silos in place (all but the workspace's own)."""

    def __init__(
        self, name: str, args: AccessControlArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fl-sandbox:infra:AccessControl", name, None, opts)
        self.assignments = assign(
            args.grants,
            principals=args.principals,
            scopes=args.scopes,
            subscription_id=args.subscription_id,
            parent=self,
        )
        self.register_outputs({"role_assignments": len(self.assignments)})
