"""Resources, their ARM ids and owners, and the dependency order between them.

The graph is built from what a Pulumi program registered: offline from ``run_under_mocks``
records, at deployment time from CrossGuard's ``PolicyResource`` list. Both give a type, a
logical name, a parent, a property bag and dependencies; neither promises a resource id in the
same form (the mocks make one up, CrossGuard gives none), so resources are matched on
*derived* ARM ids built from their names (``components.vocabulary.arm_types``) as well as on
any id they carry. Matching is case-insensitive and ignores the subscription, like ARM.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from components.vocabulary.arm_types import RESOURCE_GROUP, STORAGE_ACCOUNT, arm_name, arm_path
from components.vocabulary.conventions import (
    MEMBER_OF_MARKER,
    PURPOSE_MODELS,
    PURPOSE_SILO_DATA,
    PURPOSE_WORKSPACE,
    ROLE_SILO,
    SUBMITTER_MARKER,
    TAG_PURPOSE,
    TAG_ROLE,
    TAG_SILO,
)
from components.vocabulary.posture import NetworkPosture, posture_of

BLUEPRINT_TAG = "fl-sandbox-blueprint"
"""Optional tag naming the blueprint, read when the stack outputs are not at hand."""


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
    dependencies: tuple[str, ...] = ()
    """URNs this resource waits for (explicit ``depends_on`` and input dependencies)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Pulumi resource options, where the source records them (the offline plan does)."""
    read: bool = False
    """Read from Azure, not managed by the stack (offline, only its id is known)."""

    @classmethod
    def of(cls, resource: ResourceLike) -> Node:
        props: dict[str, Any] = dict(resource.inputs or {})
        for key, value in (resource.outputs or {}).items():
            if value is not None:
                props[key] = value
        return cls(
            resource.urn,
            resource.type,
            resource.name,
            resource.parent,
            props,
            tuple(getattr(resource, "dependencies", ()) or ()),
            dict(getattr(resource, "options", {}) or {}),
            bool(getattr(resource, "read", False)),
        )

    def with_tags(self, extra: Mapping[str, str]) -> Node:
        """This node with ``extra`` tags (ownership the stack states for a resource it reads
        but cannot tag)."""
        props = dict(self.props)
        props["tags"] = {**extra, **(self.props.get("tags") or {})}
        return Node(
            self.urn,
            self.type,
            self.name,
            self.parent,
            props,
            self.dependencies,
            self.options,
            self.read,
        )

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
        """The name Azure sees (the type's name input, else the ``name`` output)."""
        output_name = self.props.get("name")
        default = output_name if isinstance(output_name, str) and output_name else self.name
        return arm_name(self.type, self.props, default)

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
        if self.type == RESOURCE_GROUP:
            found.add(f"/resourcegroups/{self.arm_name}".lower())
            return frozenset(found)
        path = arm_path(self.type, self.props, self.arm_name)
        if path:
            rg = self.resource_group
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


def silo_of(node: Node) -> str | None:
    """The silo a resource belongs to (``fl-sandbox-silo`` tag), if any."""
    value = node.tags.get(TAG_SILO)
    return value if isinstance(value, str) and value else None


def side_of(node: Node) -> str | None:
    """``orchestrator`` or ``silo`` (``fl-sandbox-role`` tag), if tagged."""
    value = node.tags.get(TAG_ROLE)
    return value if isinstance(value, str) and value else None


def purpose_of(node: Node) -> str | None:
    """What a resource is for (``fl-sandbox-purpose`` tag), if tagged."""
    value = node.tags.get(TAG_PURPOSE)
    return value if isinstance(value, str) and value else None


def member_of(description: Any) -> str | None:
    """The silo named by ``member-of=<silo>`` in a role assignment's description."""
    if not isinstance(description, str):
        return None
    match = re.search(re.escape(MEMBER_OF_MARKER) + r"([a-z0-9-]+)", description)
    return match.group(1) if match else None


def marks_submitter(description: Any) -> bool:
    """Whether a role assignment's description marks its principal as a job submitter."""
    return isinstance(description, str) and f"[{SUBMITTER_MARKER}]" in description


def _attributed(nodes: list[Node], outputs: Mapping[str, Any]) -> list[Node]:
    """Existing storage accounts a silo brings (``existing_storage`` output: silo -> id) carry
    no tags of ours; give them the silo's ownership so the checks treat them as its data."""
    existing = outputs.get("existing_storage")
    if not isinstance(existing, Mapping) or not existing:
        return nodes
    # By provider path: a deployed read account may lack its group, and account names are
    # globally unique anyway.
    owner = {provider_path(normalize_id(str(i))): str(s) for s, i in existing.items()}
    found = []
    for node in nodes:
        silo = next((owner[p] for i in node.ids if (p := provider_path(i)) in owner), None)
        if silo is not None and node.type == STORAGE_ACCOUNT:
            node = node.with_tags(
                {TAG_ROLE: ROLE_SILO, TAG_SILO: silo, TAG_PURPOSE: PURPOSE_SILO_DATA}
            )
        found.append(node)
    return found


@dataclass
class GraphCore:
    """Every registered resource, indexed; plus the stack outputs."""

    nodes: list[Node]
    outputs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls, resources: Iterable[ResourceLike], outputs: Mapping[str, Any] | None = None
    ) -> Any:
        outputs = dict(outputs or {})
        return cls(_attributed([Node.of(r) for r in resources], outputs), outputs)

    # ----- indexes ---------------------------------------------------------------------------
    @cached_property
    def _by_type(self) -> dict[str, list[Node]]:
        index: dict[str, list[Node]] = {}
        for node in self.nodes:
            index.setdefault(node.type, []).append(node)
        return index

    def of_type(self, type_token: str) -> list[Node]:
        return list(self._by_type.get(type_token, ()))

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
        if isinstance(arm_id, Mapping):
            arm_id = arm_id.get("id")
        if not isinstance(arm_id, str):
            return None
        normalized = normalize_id(arm_id)
        found = self._by_id.get(normalized)
        if found is not None:
            return found
        path = provider_path(normalized)
        return self._by_provider_path.get(path) if path else None

    def named(self, type_token: str, name: str) -> Node | None:
        """The resource of a type with this ARM name, when exactly one has it."""
        matches = [n for n in self.of_type(type_token) if n.arm_name.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else None

    # ----- dependency order ---------------------------------------------------------------
    @cached_property
    def _ancestors(self) -> dict[str, frozenset[str]]:
        """URN -> every URN it waits for, directly or through others (iterative DFS)."""
        memo: dict[str, frozenset[str]] = {}
        in_progress: set[str] = set()  # a cycle (never in a real plan) must not loop forever
        for root in self.nodes:
            if root.urn in memo:
                continue
            stack: list[tuple[str, bool]] = [(root.urn, False)]
            while stack:
                urn, expanded = stack.pop()
                if urn in memo:
                    continue
                direct = self.by_urn[urn].dependencies if urn in self.by_urn else ()
                if expanded:
                    found: set[str] = set()
                    for dep in direct:
                        found.add(dep)
                        found |= memo.get(dep, frozenset())
                    memo[urn] = frozenset(found)
                    in_progress.discard(urn)
                    continue
                if urn in in_progress:
                    continue
                in_progress.add(urn)
                stack.append((urn, True))
                stack.extend(
                    (dep, False) for dep in direct if dep not in memo and dep not in in_progress
                )
        return memo

    def waits_for(self, node: Node, other: Node) -> bool:
        """Whether ``node`` is created only after ``other`` (transitively)."""
        return other.urn in self._ancestors.get(node.urn, frozenset())

    # ----- what the stack says about itself -------------------------------------------------
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

    @cached_property
    def posture(self) -> NetworkPosture | None:
        """The network posture the stack exported (output ``posture``), else the named
        blueprint's (``components.vocabulary.posture``), else None."""
        return NetworkPosture.from_output(self.outputs.get("posture")) or posture_of(self.blueprint)

    @property
    def private_storage(self) -> bool:
        """Whether the blueprint promises silo storage and model store off the internet."""
        return self.posture is not None and self.posture.storage_private

    @property
    def private_nodes(self) -> bool:
        """Whether the blueprint promises computes without public IPs."""
        return self.posture is not None and not self.posture.node_public_ip

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
