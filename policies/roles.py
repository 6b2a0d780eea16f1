"""Azure built-in roles that matter to the isolation invariants, by role definition GUID.

Role assignments name a role by its definition id (``.../roleDefinitions/<guid>``); the GUID
of a built-in role is the same in every tenant, so classifying by GUID works offline and at
deployment time alike. A role not listed here (a custom role) is treated as able to read data:
the checks cannot prove otherwise, so they refuse it on isolated storage.
"""

from __future__ import annotations

from typing import Final

from components.vocabulary import builtin_roles as builtin

_GUID = builtin.BUILTIN_ROLES

OWNER: Final = _GUID[builtin.OWNER]
CONTRIBUTOR: Final = _GUID[builtin.CONTRIBUTOR]
READER: Final = _GUID[builtin.READER]
USER_ACCESS_ADMINISTRATOR: Final = _GUID[builtin.USER_ACCESS_ADMINISTRATOR]
STORAGE_ACCOUNT_CONTRIBUTOR: Final = _GUID[builtin.STORAGE_ACCOUNT_CONTRIBUTOR]
STORAGE_BLOB_DATA_OWNER: Final = _GUID[builtin.BLOB_DATA_OWNER]
STORAGE_BLOB_DATA_CONTRIBUTOR: Final = _GUID[builtin.BLOB_DATA_CONTRIBUTOR]
STORAGE_BLOB_DATA_READER: Final = _GUID[builtin.BLOB_DATA_READER]

ROLE_NAMES: Final[dict[str, str]] = {guid: name for name, guid in _GUID.items()}
"""Readable name of every built-in role the project knows, by GUID."""

CONTROL_PLANE_ONLY: Final = frozenset(_GUID[name] for name in builtin.NO_DATA_ACCESS)
"""Roles that by themselves read no data and list no keys (a delegation key still needs a
data role to be useful)."""

BLOB_READ_ONLY: Final = frozenset({STORAGE_BLOB_DATA_READER})
"""Data roles that read blobs but cannot write them."""


def role_guid(role_definition_id: str) -> str:
    """The GUID at the end of a role definition id (or the GUID itself), lowercased."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def role_name(role_definition_id: str) -> str:
    """A readable name: the built-in role's name, or ``custom role <guid>``."""
    guid = role_guid(role_definition_id)
    return ROLE_NAMES.get(guid, f"custom role {guid}")


def can_touch_data(role_definition_id: str) -> bool:
    """Whether a role can read or write data, list keys, or grant itself either.

    Unknown (custom) roles count as able to: nothing offline proves they cannot.
    """
    return role_guid(role_definition_id) not in CONTROL_PLANE_ONLY


def is_blob_read_only(role_definition_id: str) -> bool:
    """Whether a role reads blobs but never writes them."""
    return role_guid(role_definition_id) in BLOB_READ_ONLY
