"""Who may do what: principals, role assignments and the resources their scopes reach.

A role assignment's ``principalId`` is matched to a user-assigned identity (its
``principalId`` output) or to a resource's system identity; anything else is an external
principal (a person, group or app). A scope reaches a resource when it is the resource,
something above it (its account for a container, its resource group, the subscription, a
management group) or, for storage, something below the account (a container, a service).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from components.vocabulary.arm_types import (
    BLOB_CONTAINER,
    COMPUTE,
    ROLE_ASSIGNMENT,
    USER_ASSIGNED_IDENTITY,
    WORKSPACE,
)
from components.vocabulary.conventions import ROLE_ORCHESTRATOR, ROLE_SILO
from policies import roles
from policies.graph.core import (
    GraphCore,
    Node,
    marks_submitter,
    member_of,
    normalize_id,
    provider_path,
    side_of,
    silo_of,
)

_SUBSCRIPTION_SCOPE = re.compile(r"^/subscriptions/[^/]+$")
_RG_SCOPE = re.compile(r"^/subscriptions/[^/]+/resourcegroups/([^/]+)$")
_MANAGEMENT_GROUP_SCOPE = re.compile(r"^/providers/microsoft\.management/managementgroups/[^/]+$")
_CONTAINER_SUFFIX = re.compile(r"^blobservices/default/containers/([^/]+)$")

ScopeLevel = Literal[
    "management-group", "subscription", "resource-group", "account", "container", "resource"
]
PrincipalKind = Literal["identity", "system-identity", "external"]


@dataclass(frozen=True)
class StorageTarget:
    """What a role-assignment scope reaches on one storage account."""

    account: Node
    container: str | None
    level: ScopeLevel


@dataclass(frozen=True)
class Principal:
    """Who a role assignment's principal id is."""

    principal_id: str
    kind: PrincipalKind
    side: str | None
    silo: str | None
    node: Node | None

    @property
    def label(self) -> str:
        if self.node is None:
            return f"external principal {self.principal_id}"
        prefix = "system identity of " if self.kind == "system-identity" else ""
        return f"{prefix}{self.node.label}"


@dataclass(frozen=True)
class Grant:
    """A role assignment, resolved: who, which role, and which storage it reaches."""

    assignment: Node
    principal: Principal
    role_definition_id: str
    scope: str
    member_of: str | None
    submitter: bool
    targets: tuple[StorageTarget, ...]

    @property
    def role(self) -> str:
        return roles.role_name(self.role_definition_id)


class AccessMixin(GraphCore):
    """Principals, resolved role assignments and scope coverage."""

    @cached_property
    def _principals(self) -> dict[str, Principal]:
        index: dict[str, Principal] = {}
        for node in self.nodes:
            if node.type == USER_ASSIGNED_IDENTITY:
                pid = node.get("principalId")
                if isinstance(pid, str) and pid:
                    index[pid.lower()] = Principal(
                        pid, "identity", side_of(node), silo_of(node), node
                    )
            system_pid = node.get("identity", "principalId")
            if isinstance(system_pid, str) and system_pid:
                index.setdefault(
                    system_pid.lower(),
                    Principal(system_pid, "system-identity", side_of(node), silo_of(node), node),
                )
        return index

    def principal(self, principal_id: Any) -> Principal:
        """Whose principal id this is; unknown ids are external (people, groups, apps)."""
        pid = str(principal_id or "")
        found = self._principals.get(pid.lower())
        return found or Principal(pid, "external", None, None, None)

    def identity_of_silo(self, silo: str) -> list[Node]:
        """The user-assigned identities tagged as silo ``silo``'s."""
        return [
            n
            for n in self.of_type(USER_ASSIGNED_IDENTITY)
            if side_of(n) == ROLE_SILO and silo_of(n) == silo
        ]

    def orchestrator_identities(self) -> list[Node]:
        return [n for n in self.of_type(USER_ASSIGNED_IDENTITY) if side_of(n) == ROLE_ORCHESTRATOR]

    def compute_identities(self, compute: Node) -> list[Node]:
        """The user-assigned identities a compute runs as (those found in the graph)."""
        uais = compute.get("identity", "userAssignedIdentities")
        ids = list(uais) if isinstance(uais, (Mapping, list)) else []
        found = [self.find(str(i)) for i in ids]
        return [n for n in found if n is not None and n.type == USER_ASSIGNED_IDENTITY]

    def computes_running_as(self, identity: Node) -> list[Node]:
        """Every compute that runs as ``identity``."""
        return [c for c in self.of_type(COMPUTE) if identity in self.compute_identities(c)]

    # ----- scopes and grants -------------------------------------------------------------------
    def scope_targets(self, scope: Any) -> tuple[StorageTarget, ...]:
        """Which storage accounts (and containers) a role-assignment scope reaches."""
        if not isinstance(scope, str) or not scope:
            return ()
        raw = scope.strip().rstrip("/").lower()
        if _MANAGEMENT_GROUP_SCOPE.match(raw):
            return tuple(StorageTarget(a, None, "management-group") for a in self.storage_accounts)
        if _SUBSCRIPTION_SCOPE.match(raw):
            return tuple(StorageTarget(a, None, "subscription") for a in self.storage_accounts)
        rg_match = _RG_SCOPE.match(raw)
        if rg_match:
            group = rg_match.group(1)
            return tuple(
                StorageTarget(a, None, "resource-group")
                for a in self.storage_accounts
                if (a.resource_group or "").lower() == group
            )
        wanted = normalize_id(raw)
        container_node = self._by_id.get(wanted)
        if container_node is not None and container_node.type == BLOB_CONTAINER:
            account = self.account_of_container(container_node)
            if account is not None:
                return (StorageTarget(account, container_node.arm_name, "container"),)
        # Storage account names are globally unique: matching below /providers/ is exact.
        wanted_path = provider_path(wanted) or wanted
        for account in self.storage_accounts:
            for account_path in {provider_path(i) or i for i in account.ids}:
                if wanted_path == account_path:
                    return (StorageTarget(account, None, "account"),)
                if wanted_path.startswith(account_path + "/"):
                    rest = wanted_path[len(account_path) + 1 :]
                    match = _CONTAINER_SUFFIX.match(rest)
                    if match:
                        name = self._container_name(match.group(1))
                        return (StorageTarget(account, name, "container"),)
                    # Queue/table/file services or anything else below the account: treat
                    # like the account itself (conservative).
                    return (StorageTarget(account, None, "account"),)
        return ()

    def scope_covers(self, scope: Any, node: Node) -> ScopeLevel | None:
        """At which level a role-assignment scope covers ``node`` (None: it does not)."""
        if not isinstance(scope, str) or not scope:
            return None
        raw = scope.strip().rstrip("/").lower()
        if _MANAGEMENT_GROUP_SCOPE.match(raw):
            return "management-group"
        if _SUBSCRIPTION_SCOPE.match(raw):
            return "subscription"
        rg_match = _RG_SCOPE.match(raw)
        if rg_match:
            same = (node.resource_group or "").lower() == rg_match.group(1)
            return "resource-group" if same else None
        found = self.find(raw)
        if found is node:
            return "resource"
        # A scope above the resource in ARM's tree (e.g. an account above its container).
        wanted = provider_path(normalize_id(raw))
        for arm_id in node.ids:
            path = provider_path(arm_id)
            if wanted and path and path.startswith(wanted + "/"):
                return "resource"
        return None

    def _container_name(self, lowered: str) -> str:
        for node in self.of_type(BLOB_CONTAINER):
            if node.arm_name.lower() == lowered:
                return node.arm_name
        return lowered

    def account_of_container(self, container: Node) -> Node | None:
        account_name = container.get("accountName")
        if not isinstance(account_name, str):
            return None
        for account in self.storage_accounts:
            same_rg = (account.resource_group or "").lower() == (
                container.resource_group or ""
            ).lower()
            if account.arm_name.lower() == account_name.lower() and same_rg:
                return account
        return None

    def container(self, account: Node, name: str) -> Node | None:
        """The blob container ``name`` of ``account``, if declared."""
        for node in self.of_type(BLOB_CONTAINER):
            if node.arm_name == name and self.account_of_container(node) is account:
                return node
        return None

    @cached_property
    def grants(self) -> list[Grant]:
        """Every role assignment, resolved."""
        resolved: list[Grant] = []
        for node in self.of_type(ROLE_ASSIGNMENT):
            scope = node.get("scope")
            description = node.get("description")
            resolved.append(
                Grant(
                    assignment=node,
                    principal=self.principal(node.get("principalId")),
                    role_definition_id=str(node.get("roleDefinitionId") or ""),
                    scope=str(scope or ""),
                    member_of=member_of(description),
                    submitter=marks_submitter(description),
                    targets=self.scope_targets(scope),
                )
            )
        return resolved

    @cached_property
    def _grants_by_principal(self) -> dict[str, list[Grant]]:
        index: dict[str, list[Grant]] = {}
        for grant in self.grants:
            index.setdefault(grant.principal.principal_id.lower(), []).append(grant)
        return index

    def grants_of(self, principal_id: str) -> list[Grant]:
        """Every role assignment held by ``principal_id``."""
        return list(self._grants_by_principal.get(principal_id.lower(), ()))

    @cached_property
    def submitter_ids(self) -> frozenset[str]:
        """Principal ids (lowercased) granted anything as a job submitter."""
        return frozenset(g.principal.principal_id.lower() for g in self.grants if g.submitter)

    def workspaces(self) -> list[Node]:
        return self.of_type(WORKSPACE)
