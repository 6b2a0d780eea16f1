"""Azure built-in roles that matter to the isolation invariants, by role definition GUID.

Role assignments name a role by its definition id (``.../roleDefinitions/<guid>``); the GUID
of a built-in role is the same in every tenant, so classifying by GUID works offline and at
deployment time alike. A role not listed here (a custom role) is treated as able to read data:
the checks cannot prove otherwise, so they refuse it on isolated storage.
"""

from __future__ import annotations

from typing import Final

OWNER: Final = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR: Final = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER: Final = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMINISTRATOR: Final = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR: Final = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
STORAGE_ACCOUNT_CONTRIBUTOR: Final = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
STORAGE_ACCOUNT_KEY_OPERATOR: Final = "81a9662b-bebf-436f-a333-f67b29880f12"
READER_AND_DATA_ACCESS: Final = "c12c1c16-33a1-487b-954d-41c89c60f349"
STORAGE_BLOB_DATA_OWNER: Final = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR: Final = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER: Final = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_BLOB_DELEGATOR: Final = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
STORAGE_QUEUE_DATA_CONTRIBUTOR: Final = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_QUEUE_DATA_READER: Final = "19e7f393-937e-4f77-808e-94535e297925"
STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR: Final = "8a0f0c08-91a1-4084-bc3d-661d67233fed"
STORAGE_QUEUE_DATA_MESSAGE_SENDER: Final = "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"
STORAGE_TABLE_DATA_CONTRIBUTOR: Final = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
STORAGE_TABLE_DATA_READER: Final = "76199698-9eea-4c19-bc75-cec21354c6b6"
STORAGE_FILE_DATA_SMB_SHARE_CONTRIBUTOR: Final = "0c867c2a-1d8c-454a-a3db-039c8fdc4d48"
STORAGE_FILE_DATA_SMB_SHARE_READER: Final = "aba4ae5f-2193-4029-9191-0cb91df5e314"
STORAGE_FILE_DATA_SMB_SHARE_ELEVATED_CONTRIBUTOR: Final = "a7264617-510b-434b-a828-9731dc254ea7"
STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR: Final = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
STORAGE_FILE_DATA_PRIVILEGED_READER: Final = "b8eda974-7b85-4f76-af95-65846b26df6d"

KEY_VAULT_ADMINISTRATOR: Final = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
KEY_VAULT_SECRETS_USER: Final = "4633458b-17de-408a-b874-0445c86b69e6"
ACR_PULL: Final = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH: Final = "8311e382-0749-4cb8-b61a-304f252e45ec"
AZUREML_DATA_SCIENTIST: Final = "f6c7c914-8db3-469d-8ca1-694a8f32e121"
AZUREML_COMPUTE_OPERATOR: Final = "e503ece1-11d0-4e8e-8e2c-7a6c3bf38815"

ROLE_NAMES: Final[dict[str, str]] = {
    OWNER: "Owner",
    CONTRIBUTOR: "Contributor",
    READER: "Reader",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
    STORAGE_ACCOUNT_CONTRIBUTOR: "Storage Account Contributor",
    STORAGE_ACCOUNT_KEY_OPERATOR: "Storage Account Key Operator Service Role",
    READER_AND_DATA_ACCESS: "Reader and Data Access",
    STORAGE_BLOB_DATA_OWNER: "Storage Blob Data Owner",
    STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
    STORAGE_BLOB_DELEGATOR: "Storage Blob Delegator",
    STORAGE_QUEUE_DATA_CONTRIBUTOR: "Storage Queue Data Contributor",
    STORAGE_QUEUE_DATA_READER: "Storage Queue Data Reader",
    STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR: "Storage Queue Data Message Processor",
    STORAGE_QUEUE_DATA_MESSAGE_SENDER: "Storage Queue Data Message Sender",
    STORAGE_TABLE_DATA_CONTRIBUTOR: "Storage Table Data Contributor",
    STORAGE_TABLE_DATA_READER: "Storage Table Data Reader",
    STORAGE_FILE_DATA_SMB_SHARE_CONTRIBUTOR: "Storage File Data SMB Share Contributor",
    STORAGE_FILE_DATA_SMB_SHARE_READER: "Storage File Data SMB Share Reader",
    STORAGE_FILE_DATA_SMB_SHARE_ELEVATED_CONTRIBUTOR: (
        "Storage File Data SMB Share Elevated Contributor"
    ),
    STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR: "Storage File Data Privileged Contributor",
    STORAGE_FILE_DATA_PRIVILEGED_READER: "Storage File Data Privileged Reader",
    KEY_VAULT_ADMINISTRATOR: "Key Vault Administrator",
    KEY_VAULT_SECRETS_USER: "Key Vault Secrets User",
    ACR_PULL: "AcrPull",
    ACR_PUSH: "AcrPush",
    AZUREML_DATA_SCIENTIST: "AzureML Data Scientist",
    AZUREML_COMPUTE_OPERATOR: "AzureML Compute Operator",
}

CONTROL_PLANE_ONLY: Final = frozenset({READER, STORAGE_BLOB_DELEGATOR})
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
