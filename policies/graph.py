"""The resource graph the isolation invariants are checked over.

Built from what a Pulumi program registered: offline from ``run_under_mocks`` records, at
deployment time from CrossGuard's ``PolicyResource`` list. Both give a type, a logical name,
a parent and a property bag; neither promises a resource id in the same form (the mocks make
one up, CrossGuard gives none), so resources are matched on *derived* ARM ids built from
their names (resource group, account, VNet, ...) as well as on any id they carry. Matching
is case-insensitive and ignores the subscription, like ARM.

The graph answers the questions the invariants ask: which storage accounts and containers a
role-assignment scope covers (a role at resource-group or subscription scope covers every
storage account inside it), whose identity a principal id is, which silo a storage account,
compute, VNet or subnet belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

from components.conventions import (
    MEMBER_OF_MARKER,
    PURPOSE_MODELS,
    PURPOSE_SILO_DATA,
    PURPOSE_WORKSPACE,
    ROLE_ORCHESTRATOR,
    ROLE_SILO,
    TAG_PURPOSE,
    TAG_ROLE,
    TAG_SILO,
)
from policies import roles

STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
COMPUTE = "azure-native:machinelearningservices:Compute"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
VIRTUAL_NETWORK = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
VNET_PEERING = "azure-native:network:VirtualNetworkPeering"
PRIVATE_DNS_ZONE = "azure-native:privatedns:PrivateZone"
PRIVATE_DNS_LINK = "azure-native:privatedns:VirtualNetworkLink"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"

BLUEPRINT_TAG = "fl-sandbox-blueprint"
"""Optional tag naming the blueprint, read when the stack outputs are not at hand."""

PRIVATE_BLUEPRINTS = frozenset({"eyes-off"})
"""Blueprints whose silo storage and computes must not be reachable from the internet."""

# Explicit ARM-name input per resource type (the generic ``name`` input comes last).
_NAME_KEYS: dict[str, tuple[str, ...]] = {
    STORAGE_ACCOUNT: ("accountName",),
    BLOB_CONTAINER: ("containerName",),
    USER_ASSIGNED_IDENTITY: ("resourceName",),
    COMPUTE: ("computeName",),
    WORKSPACE: ("workspaceName",),
    VIRTUAL_NETWORK: ("virtualNetworkName",),
    SUBNET: ("subnetName",),
    PRIVATE_ENDPOINT: ("privateEndpointName",),
    VNET_PEERING: ("virtualNetworkPeeringName",),
    PRIVATE_DNS_ZONE: ("privateZoneName",),
    PRIVATE_DNS_LINK: ("virtualNetworkLinkName",),
    RESOURCE_GROUP: ("resourceGroupName",),
    ROLE_ASSIGNMENT: ("roleAssignmentName",),
    "azure-native:keyvault:Vault": ("vaultName",),
    "azure-native:containerregistry:Registry": ("registryName",),
    "azure-native:network:NetworkSecurityGroup": ("networkSecurityGroupName",),
    "azure-native:machinelearningservices:Datastore": ("name",),
}

# ARM path (under the resource group) per resource type, for deriving ids from names.
_ARM_PATHS: dict[str, str] = {
    STORAGE_ACCOUNT: "microsoft.storage/storageaccounts/{name}",
    USER_ASSIGNED_IDENTITY: "microsoft.managedidentity/userassignedidentities/{name}",
    COMPUTE: "microsoft.machinelearningservices/workspaces/{workspaceName}/computes/{name}",
    WORKSPACE: "microsoft.machinelearningservices/workspaces/{name}",
    VIRTUAL_NETWORK: "microsoft.network/virtualnetworks/{name}",
    SUBNET: "microsoft.network/virtualnetworks/{virtualNetworkName}/subnets/{name}",
    PRIVATE_ENDPOINT: "microsoft.network/privateendpoints/{name}",
    PRIVATE_DNS_ZONE: "microsoft.network/privatednszones/{name}",
    "azure-native:network:NetworkSecurityGroup": "microsoft.network/networksecuritygroups/{name}",
}

_SUBSCRIPTION_SCOPE = re.compile(r"^/subscriptions/[^/]+$")
_RG_SCOPE = re.compile(r"^/subscriptions/[^/]+/resourcegroups/([^/]+)$")
_MANAGEMENT_GROUP_SCOPE = re.compile(r"^/providers/microsoft\.management/managementgroups/[^/]+$")
_CONTAINER_SUFFIX = re.compile(r"^blobservices/default/containers/([^/]+)$")

ScopeLevel = Literal["management-group", "subscription", "resource-group", "account", "container"]
PrincipalKind = Literal["identity", "system-identity", "external"]


class ResourceLike(Protocol):
    """What the graph needs of a registered resource (``RecordedResource`` fits)."""

    @property
    def urn(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> str | None: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def outputs(self) -> Mapping[str, Any]: ...


def normalize_id(arm_id: str) -> str:
    """Lowercase, no trailing slash, subscription prefix dropped below resource-group level."""
    value = arm_id.strip().rstrip("/").lower()
    match = re.match(r"^/subscriptions/[^/]+(/resourcegroups/.+)$", value)
    return match.group(1) if match else value


def provider_path(arm_id: str) -> str | None:
    """The lowercased part of an id from its first ``/providers/`` on (types and names)."""
    value = arm_id.lower()
    index = value.find("/providers/")
    return value[index:] if index >= 0 else None


@dataclass(frozen=True, eq=False)
class Node:
    """One resource: its registration plus the property bag (outputs over inputs)."""

    urn: str
    type: str
    name: str
    parent: str | None
    props: Mapping[str, Any]

    @classmethod
    def of(cls, resource: ResourceLike) -> Node:
        props: dict[str, Any] = dict(resource.inputs or {})
        for key, value in (resource.outputs or {}).items():
            if value is not None:
                props[key] = value
        return cls(resource.urn, resource.type, resource.name, resource.parent, props)

    def get(self, *path: str) -> Any:
        """A nested property, or None when any step is missing."""
        value: Any = self.props
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    @cached_property
    def tags(self) -> Mapping[str, str]:
        tags = self.props.get("tags")
        return tags if isinstance(tags, Mapping) else {}

    @cached_property
    def arm_name(self) -> str:
        """The name Azure sees (explicit name input, else the logical name)."""
        for key in (*_NAME_KEYS.get(self.type, ()), "name"):
            value = self.props.get(key)
            if isinstance(value, str) and value:
                return value
        return self.name

    @cached_property
    def resource_group(self) -> str | None:
        value = self.props.get("resourceGroupName")
        if isinstance(value, str):
            return value
        own_id = self.props.get("id")
        if isinstance(own_id, str):
            match = re.search(r"/resourcegroups/([^/]+)", own_id, re.IGNORECASE)
            if match:
                return match.group(1)
        return None

    @cached_property
    def ids(self) -> frozenset[str]:
        """Every normalized id this resource may be referred to by."""
        found: set[str] = set()
        own_id = self.props.get("id")
        if isinstance(own_id, str) and own_id:
            found.add(normalize_id(own_id))
        template = _ARM_PATHS.get(self.type)
        rg = self.resource_group
        if self.type == RESOURCE_GROUP:
            found.add(f"/resourcegroups/{self.arm_name}".lower())
        elif template:
            values = {k: v for k, v in self.props.items() if isinstance(v, str)}
            values["name"] = self.arm_name
            try:
                path = template.format(**values)
            except KeyError:
                path = None
            if path:
                prefix = f"/resourcegroups/{rg}" if rg else ""
                found.add(f"{prefix}/providers/{path}".lower())
        return frozenset(found)

    @property
    def label(self) -> str:
        """``type 'logical name' (ARM name)``: how violations name a resource."""
        short = self.type.rsplit(":", 1)[-1]
        if self.arm_name != self.name:
            return f"{short} '{self.name}' ({self.arm_name})"
        return f"{short} '{self.name}'"


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
    targets: tuple[StorageTarget, ...]

    @property
    def role(self) -> str:
        return roles.role_name(self.role_definition_id)


@dataclass(frozen=True)
class SubnetInfo:
    """A subnet with the VNet (and silo) it belongs to."""

    name: str
    vnet: Node
    address_prefixes: tuple[str, ...]
    node: Node | None
    ids: frozenset[str]

    @property
    def silo(self) -> str | None:
        return silo_of(self.vnet)


def silo_of(node: Node) -> str | None:
    """The silo a resource belongs to (``fl-sandbox-silo`` tag), if any."""
    value = node.tags.get(TAG_SILO)
    return value if isinstance(value, str) and value else None


def side_of(node: Node) -> str | None:
    """``orchestrator`` or ``silo`` (``fl-sandbox-role`` tag), if tagged."""
    value = node.tags.get(TAG_ROLE)
    return value if isinstance(value, str) and value else None


def purpose_of(node: Node) -> str | None:
    """What a storage account holds (``fl-sandbox-purpose`` tag), if tagged."""
    value = node.tags.get(TAG_PURPOSE)
    return value if isinstance(value, str) and value else None


def member_of(description: Any) -> str | None:
    """The silo named by ``member-of=<silo>`` in a role assignment's description."""
    if not isinstance(description, str):
        return None
    match = re.search(re.escape(MEMBER_OF_MARKER) + r"([a-z0-9-]+)", description)
    return match.group(1) if match else None


@dataclass
class ResourceGraph:
    """Every registered resource, indexed for the invariants; plus the stack outputs."""

    nodes: list[Node]
    outputs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls, resources: Iterable[ResourceLike], outputs: Mapping[str, Any] | None = None
    ) -> ResourceGraph:
        return cls([Node.of(r) for r in resources], dict(outputs or {}))

    # ----- indexes ---------------------------------------------------------------------------
    def of_type(self, type_token: str) -> list[Node]:
        return [n for n in self.nodes if n.type == type_token]

    @cached_property
    def by_urn(self) -> dict[str, Node]:
        return {n.urn: n for n in self.nodes}

    @cached_property
    def _by_id(self) -> dict[str, Node]:
        index: dict[str, Node] = {}
        for node in self.nodes:
            for arm_id in node.ids:
                index.setdefault(arm_id, node)
        return index

    @cached_property
    def _by_provider_path(self) -> dict[str, Node | None]:
        index: dict[str, Node | None] = {}
        for node in self.nodes:
            for arm_id in node.ids:
                path = provider_path(arm_id)
                if path is None:
                    continue
                # Two resources with the same path in different groups: ambiguous, no match.
                index[path] = None if index.get(path, node) is not node else node
        return index

    def find(self, arm_id: Any) -> Node | None:
        """The resource an ARM id refers to, if it is in the graph.

        Falls back to matching the part after ``/providers/`` when the resource's group is
        unknown (CrossGuard passes outputs, which lack ``resourceGroupName``), as long as
        that path is unique in the graph.
        """
        if not isinstance(arm_id, str):
            return None
        normalized = normalize_id(arm_id)
        found = self._by_id.get(normalized)
        if found is not None:
            return found
        path = provider_path(normalized)
        return self._by_provider_path.get(path) if path else None

    @cached_property
    def storage_accounts(self) -> list[Node]:
        return self.of_type(STORAGE_ACCOUNT)

    def silo_storage(self) -> list[Node]:
        """Storage accounts holding a silo's data."""
        return [a for a in self.storage_accounts if purpose_of(a) == PURPOSE_SILO_DATA]

    def model_stores(self) -> list[Node]:
        return [a for a in self.storage_accounts if purpose_of(a) == PURPOSE_MODELS]

    def workspace_storage(self) -> list[Node]:
        return [a for a in self.storage_accounts if purpose_of(a) == PURPOSE_WORKSPACE]

    @cached_property
    def federation(self) -> Mapping[str, Any]:
        value = self.outputs.get("federation")
        return value if isinstance(value, Mapping) else {}

    @cached_property
    def blueprint(self) -> str | None:
        """The blueprint: from the ``federation`` (or ``blueprint``) output, else a tag."""
        for value in (self.federation.get("blueprint"), self.outputs.get("blueprint")):
            if isinstance(value, str) and value:
                return value
        for node in self.nodes:
            tagged = node.tags.get(BLUEPRINT_TAG)
            if isinstance(tagged, str) and tagged:
                return tagged
        return None

    @property
    def private_network(self) -> bool:
        """Whether the blueprint promises private-only storage and computes."""
        return self.blueprint in PRIVATE_BLUEPRINTS

    def silo_region(self, silo: str) -> str | None:
        """A silo's region: from the manifest, else from its data storage's location."""
        for entry in self.federation.get("silos", []) or []:
            if isinstance(entry, Mapping) and entry.get("name") == silo:
                region = entry.get("region")
                if isinstance(region, str):
                    return region
        for account in self.silo_storage():
            if silo_of(account) == silo and isinstance(account.get("location"), str):
                return account.get("location")
        return None

    def silo_names(self) -> list[str]:
        """Every silo named by the manifest or by a tag, in first-seen order."""
        names: list[str] = []
        for entry in self.federation.get("silos", []) or []:
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                names.append(entry["name"])
        for node in self.nodes:
            silo = silo_of(node)
            if silo and silo not in names:
                names.append(silo)
        return names

    # ----- identities --------------------------------------------------------------------------
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
            account = self._account_of_container(container_node)
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

    def _container_name(self, lowered: str) -> str:
        for node in self.of_type(BLOB_CONTAINER):
            if node.arm_name.lower() == lowered:
                return node.arm_name
        return lowered

    def _account_of_container(self, container: Node) -> Node | None:
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

    @cached_property
    def grants(self) -> list[Grant]:
        """Every role assignment, resolved."""
        resolved: list[Grant] = []
        for node in self.of_type(ROLE_ASSIGNMENT):
            scope = node.get("scope")
            resolved.append(
                Grant(
                    assignment=node,
                    principal=self.principal(node.get("principalId")),
                    role_definition_id=str(node.get("roleDefinitionId") or ""),
                    scope=str(scope or ""),
                    member_of=member_of(node.get("description")),
                    targets=self.scope_targets(scope),
                )
            )
        return resolved

    # ----- networking --------------------------------------------------------------------------
    @cached_property
    def subnets(self) -> list[SubnetInfo]:
        """Subnets declared as resources or inline in their VNet."""
        found: list[SubnetInfo] = []
        vnets = self.of_type(VIRTUAL_NETWORK)
        for vnet in vnets:
            for inline in vnet.get("subnets") or []:
                if not isinstance(inline, Mapping) or not isinstance(inline.get("name"), str):
                    continue
                ids = {f"{vid}/subnets/{inline['name']}".lower() for vid in vnet.ids}
                if isinstance(inline.get("id"), str):
                    ids.add(normalize_id(inline["id"]))
                found.append(
                    SubnetInfo(inline["name"], vnet, _prefixes(inline), None, frozenset(ids))
                )
        for node in self.of_type(SUBNET):
            vnet = self._vnet_of_subnet(node)
            if vnet is None:
                continue
            ids = set(node.ids) | {f"{vid}/subnets/{node.arm_name}".lower() for vid in vnet.ids}
            prefixes = _prefixes(node.props)
            found.append(SubnetInfo(node.arm_name, vnet, prefixes, node, frozenset(ids)))
        return found

    def _vnet_of_subnet(self, subnet: Node) -> Node | None:
        vnet_name = subnet.get("virtualNetworkName")
        for vnet in self.of_type(VIRTUAL_NETWORK):
            same_rg = (vnet.resource_group or "").lower() == (subnet.resource_group or "").lower()
            same_name = isinstance(vnet_name, str) and vnet.arm_name.lower() == vnet_name.lower()
            if same_name and same_rg:
                return vnet
        parent = self.by_urn.get(subnet.parent or "")
        return parent if parent is not None and parent.type == VIRTUAL_NETWORK else None

    def find_subnet(self, subnet_id: Any) -> SubnetInfo | None:
        if not isinstance(subnet_id, str) or not subnet_id:
            return None
        wanted = normalize_id(subnet_id)
        for subnet in self.subnets:
            if wanted in subnet.ids:
                return subnet
        return None

    def private_endpoints_to(self, account: Node, group: str = "blob") -> list[Node]:
        """Private endpoints whose connection targets ``account`` for ``group``."""
        found: list[Node] = []
        for endpoint in self.of_type(PRIVATE_ENDPOINT):
            for connection in _connections(endpoint):
                target = self.find(connection.get("privateLinkServiceId"))
                groups = [str(g).lower() for g in connection.get("groupIds") or []]
                if target is account and group in groups:
                    found.append(endpoint)
        return found


def _connections(endpoint: Node) -> list[Mapping[str, Any]]:
    connections = list(endpoint.get("privateLinkServiceConnections") or [])
    connections += list(endpoint.get("manualPrivateLinkServiceConnections") or [])
    return [c for c in connections if isinstance(c, Mapping)]


def _prefixes(props: Mapping[str, Any]) -> tuple[str, ...]:
    values: list[str] = []
    if isinstance(props.get("addressPrefix"), str):
        values.append(props["addressPrefix"])
    values += [p for p in props.get("addressPrefixes") or [] if isinstance(p, str)]
    return tuple(values)


__all__ = [
    "Grant",
    "Node",
    "Principal",
    "ResourceGraph",
    "ResourceLike",
    "StorageTarget",
    "SubnetInfo",
    "member_of",
    "normalize_id",
    "purpose_of",
    "side_of",
    "silo_of",
]
