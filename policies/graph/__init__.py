"""The resource graph every check reads: resources and owners (``core``), who may do what
(``access``), and the declared network (``network``).

The same graph is built offline from the mock runtime's records and at deployment time from
CrossGuard's resources, so the invariants, Azure's rules and the job-path check agree in the
offline plan, the tests and the policy pack.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.vocabulary.arm_types import (
    BLOB_CONTAINER,
    COMPUTE,
    CONTAINER_REGISTRY,
    DATASTORE,
    KEY_VAULT,
    PRIVATE_DNS_LINK,
    PRIVATE_DNS_ZONE,
    PRIVATE_DNS_ZONE_GROUP,
    PRIVATE_ENDPOINT,
    RESOURCE_GROUP,
    ROLE_ASSIGNMENT,
    STORAGE_ACCOUNT,
    SUBNET,
    USER_ASSIGNED_IDENTITY,
    VIRTUAL_NETWORK,
    VNET_PEERING,
    WORKSPACE,
)
from policies.graph.access import AccessMixin, Grant, Principal, StorageTarget
from policies.graph.core import (
    BLUEPRINT_TAG,
    Node,
    ResourceLike,
    marks_submitter,
    member_of,
    normalize_id,
    purpose_of,
    side_of,
    silo_of,
)
from policies.graph.network import NetworkMixin, SubnetInfo, connections


@dataclass
class ResourceGraph(AccessMixin, NetworkMixin):
    """Every registered resource, indexed for the checks; plus the stack outputs."""


__all__ = [
    "BLOB_CONTAINER",
    "BLUEPRINT_TAG",
    "COMPUTE",
    "CONTAINER_REGISTRY",
    "DATASTORE",
    "KEY_VAULT",
    "PRIVATE_DNS_LINK",
    "PRIVATE_DNS_ZONE",
    "PRIVATE_DNS_ZONE_GROUP",
    "PRIVATE_ENDPOINT",
    "RESOURCE_GROUP",
    "ROLE_ASSIGNMENT",
    "STORAGE_ACCOUNT",
    "SUBNET",
    "USER_ASSIGNED_IDENTITY",
    "VIRTUAL_NETWORK",
    "VNET_PEERING",
    "WORKSPACE",
    "Grant",
    "Node",
    "Principal",
    "ResourceGraph",
    "ResourceLike",
    "StorageTarget",
    "SubnetInfo",
    "connections",
    "marks_submitter",
    "member_of",
    "normalize_id",
    "purpose_of",
    "side_of",
    "silo_of",
]
