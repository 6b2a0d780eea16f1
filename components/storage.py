"""A storage account locked down the same way everywhere in the sandbox.

Shared-key access off (identities and RBAC only, so there is no key to leak), no anonymous
blob access, TLS 1.2 minimum, HTTPS only. Private accounts also refuse public network access
and are reached through private endpoints (see ``SiloNetwork``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
from pulumi_azure_native import storage


def secure_storage_account(
    resource_name: str,
    *,
    account_name: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    location: str,
    private: bool,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> storage.StorageAccount:
    return storage.StorageAccount(
        resource_name,
        account_name=account_name,
        resource_group_name=resource_group_name,
        location=location,
        kind="StorageV2",
        sku={"name": "Standard_LRS"},
        allow_shared_key_access=False,
        allow_blob_public_access=False,
        default_to_o_auth_authentication=True,
        minimum_tls_version="TLS1_2",
        enable_https_traffic_only=True,
        public_network_access="Disabled" if private else "Enabled",
        network_rule_set={
            "default_action": "Deny" if private else "Allow",
            # Lets the AML service itself (a trusted Azure service) reach private accounts.
            "bypass": "AzureServices",
        },
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def private_container(
    resource_name: str,
    *,
    container_name: str,
    account: storage.StorageAccount,
    resource_group_name: pulumi.Input[str],
    parent: pulumi.Resource,
) -> storage.BlobContainer:
    return storage.BlobContainer(
        resource_name,
        container_name=container_name,
        account_name=account.name,
        resource_group_name=resource_group_name,
        public_access="None",
        opts=pulumi.ResourceOptions(parent=parent),
    )


def container_scope(account: storage.StorageAccount, container: str) -> pulumi.Output[str]:
    """ARM scope of one blob container, for container-level role assignments."""
    return pulumi.Output.concat(account.id, "/blobServices/default/containers/", container)
