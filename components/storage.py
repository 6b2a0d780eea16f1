"""A storage account locked down the same way everywhere in the sandbox.

Shared-key access off (identities and RBAC only, so there is no key to leak), no anonymous
blob access, TLS 1.2 minimum, HTTPS only, no local users and no SFTP (both carry their own
credentials). How the network reaches the account is one of three modes:

- ``public``: public network access on, default action Allow (RBAC still applies);
- ``selected-networks``: public network access on, default action Deny, a resource-instance
  rule for the workspace (the AML service reaches it as a trusted instance) and IP rules for
  the people who submit jobs; compute reaches it through private endpoints;
- ``private``: public network access Disabled, reached only through private endpoints, copy
  limited to private links. No ``bypass``: with public access disabled it has no effect
  (Azure's rule), so setting it would only mislead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
from pulumi_azure_native import storage

StorageNetworkMode = Literal["public", "selected-networks", "private"]


@dataclass(frozen=True)
class StorageNetwork:
    """How the network reaches an account (see the module docstring)."""

    mode: StorageNetworkMode
    ip_ranges: Sequence[str] = ()
    """IPv4 addresses or CIDR ranges allowed in (``selected-networks``)."""
    trusted_resources: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    """Resource ids admitted as trusted resource instances (``selected-networks``)."""
    tenant_id: pulumi.Input[str] | None = None
    private_links_only: bool = False
    """Private storage opened only to its data uploaders' addresses: no trusted-service
    bypass, and copies still limited to private links."""


def uploaders_network(ip_ranges: Sequence[str]) -> StorageNetwork:
    """Private storage that admits its data uploaders' addresses and nothing else from the
    internet (``dataUploaders`` with ``ipRanges`` in eyes-off)."""
    return StorageNetwork("selected-networks", ip_ranges=tuple(ip_ranges), private_links_only=True)


PUBLIC = StorageNetwork("public")
PRIVATE = StorageNetwork("private")


def _network_settings(net: StorageNetwork) -> dict[str, object]:
    if net.mode == "public":
        return {
            "public_network_access": "Enabled",
            "network_rule_set": {"default_action": "Allow", "bypass": "AzureServices"},
        }
    if net.mode == "private":
        return {
            "public_network_access": "Disabled",
            "allowed_copy_scope": "PrivateLink",
            "network_rule_set": {"default_action": "Deny", "bypass": "None"},
        }
    settings: dict[str, object] = (
        {"allowed_copy_scope": "PrivateLink"} if net.private_links_only else {}
    )
    return {
        **settings,
        "public_network_access": "Enabled",
        "network_rule_set": {
            "default_action": "Deny",
            "bypass": "None" if net.private_links_only else "AzureServices",
            "ip_rules": [
                {"i_p_address_or_range": cidr.removesuffix("/32"), "action": "Allow"}
                for cidr in net.ip_ranges
            ],
            "resource_access_rules": [
                {"tenant_id": net.tenant_id, "resource_id": rid} for rid in net.trusted_resources
            ],
        },
    }


def secure_storage_account(
    resource_name: str,
    *,
    account_name: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    location: str,
    network: StorageNetwork,
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
        is_local_user_enabled=False,
        is_sftp_enabled=False,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
        **_network_settings(network),
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
