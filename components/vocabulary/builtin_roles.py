"""Azure built-in roles the sandbox grants, lets users grant, or must recognise, by name.

The single table of built-in role GUIDs: the permissions table grants from it and the
isolation policies (``policies/roles.py``) classify role assignments with it.

A built-in role's definition GUID is the same in every tenant; the full role definition id is
``/subscriptions/<sub>/providers/Microsoft.Authorization/roleDefinitions/<guid>``. Users name
roles in the stack file (``extraRoleAssignments``), the code by the constants below.
"""

from __future__ import annotations

from typing import Final

OWNER: Final = "Owner"
CONTRIBUTOR: Final = "Contributor"
READER: Final = "Reader"
USER_ACCESS_ADMINISTRATOR: Final = "User Access Administrator"
RBAC_ADMINISTRATOR: Final = "Role Based Access Control Administrator"
STORAGE_ACCOUNT_CONTRIBUTOR: Final = "Storage Account Contributor"
BLOB_DATA_OWNER: Final = "Storage Blob Data Owner"
BLOB_DATA_CONTRIBUTOR: Final = "Storage Blob Data Contributor"
BLOB_DATA_READER: Final = "Storage Blob Data Reader"
BLOB_DELEGATOR: Final = "Storage Blob Delegator"
FILE_DATA_PRIVILEGED_CONTRIBUTOR: Final = "Storage File Data Privileged Contributor"
KEY_VAULT_ADMINISTRATOR: Final = "Key Vault Administrator"
ACR_PULL: Final = "AcrPull"
AML_DATA_SCIENTIST: Final = "AzureML Data Scientist"
NETWORK_CONTRIBUTOR: Final = "Network Contributor"
KUBERNETES_EXTENSION_CONTRIBUTOR: Final = "Kubernetes Extension Contributor"
AKS_CLUSTER_ADMIN: Final = "Azure Kubernetes Service Cluster Admin Role"
RELAY_OWNER: Final = "Azure Relay Owner"
VM_USER_LOGIN: Final = "Virtual Machine User Login"

BUILTIN_ROLES: Final[dict[str, str]] = {
    OWNER: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    CONTRIBUTOR: "b24988ac-6180-42a0-ab88-20f7382dd24c",
    READER: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    VM_USER_LOGIN: "fb879df8-f326-4884-b1cf-06f3ad86be52",
    USER_ACCESS_ADMINISTRATOR: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    RBAC_ADMINISTRATOR: "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    STORAGE_ACCOUNT_CONTRIBUTOR: "17d1049b-9a84-46fb-8f53-869881c3d3ab",
    "Storage Account Key Operator Service Role": "81a9662b-bebf-436f-a333-f67b29880f12",
    "Reader and Data Access": "c12c1c16-33a1-487b-954d-41c89c60f349",
    BLOB_DATA_OWNER: "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    BLOB_DATA_CONTRIBUTOR: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    BLOB_DATA_READER: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    BLOB_DELEGATOR: "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Queue Data Reader": "19e7f393-937e-4f77-808e-94535e297925",
    "Storage Queue Data Message Processor": "8a0f0c08-91a1-4084-bc3d-661d67233fed",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Table Data Reader": "76199698-9eea-4c19-bc75-cec21354c6b6",
    FILE_DATA_PRIVILEGED_CONTRIBUTOR: "69566ab7-960f-475b-8e7c-b3118f30c6bd",
    "Storage File Data Privileged Reader": "b8eda974-7b85-4f76-af95-65846b26df6d",
    "Storage File Data SMB Share Contributor": "0c867c2a-1d8c-454a-a3db-039c8fdc4d48",
    "Storage File Data SMB Share Reader": "aba4ae5f-2193-4029-9191-0cb91df5e314",
    "Storage File Data SMB Share Elevated Contributor": "a7264617-510b-434b-a828-9731dc254ea7",
    KEY_VAULT_ADMINISTRATOR: "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    ACR_PULL: "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    AML_DATA_SCIENTIST: "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "AzureML Compute Operator": "e503ece1-11d0-4e8e-8e2c-7a6c3bf38815",
    NETWORK_CONTRIBUTOR: "4d97b98b-1d4f-4787-a291-c67834d212e7",
    KUBERNETES_EXTENSION_CONTRIBUTOR: "85cb6faf-e071-4c9b-8136-154b5a04f717",
    AKS_CLUSTER_ADMIN: "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
    RELAY_OWNER: "2787bf04-f1f5-4bfe-8383-c8a24483ee38",
}

NO_STORAGE_ACTIONS: Final = frozenset({RELAY_OWNER})
"""Roles whose actions are all on another resource provider (Azure Relay Owner:
``Microsoft.Relay/*``): at a resource group holding a storage account they can neither read
nor change it, not even its settings."""

NO_DATA_ACCESS: Final = frozenset({READER, BLOB_DELEGATOR, *NO_STORAGE_ACTIONS})
"""Roles that by themselves read no data, list no keys and grant nothing. Every other role,
on a storage account or a scope containing one, is treated as able to reach its data
(directly, through keys, or by granting itself a data role)."""


def touches_data(role: str) -> bool:
    """Whether ``role`` on (or above) a storage account can reach the account's data."""
    return role not in NO_DATA_ACCESS


def role_definition_id(subscription_id: str, role: str) -> str:
    """The full role definition id of a built-in role in ``subscription_id``."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{BUILTIN_ROLES[role]}"
    )
