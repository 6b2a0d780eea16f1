"""Hand-built resource graphs for the invariant unit tests.

``sandbox()`` returns the records of a small, correct two-silo sandbox shaped like what the
builder registers (tags, ARM ids, role assignments, computes, networks), so each test can
break exactly one thing and check that the matching invariant names it.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from typing import Any

from blueprints.mock_runtime import RecordedResource
from components.vocabulary.conventions import (
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

SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"
RG = "rg-fl"
PROVIDERS = f"{SUB}/resourceGroups/{RG}/providers"
SILOS = {"alpha": "westeurope", "beta": "eastus"}
ORCH_PRINCIPAL = "0000aaaa-0000-0000-0000-000000000001"
WS_PRINCIPAL = "0000aaaa-0000-0000-0000-000000000002"


def silo_principal(silo: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{silo}"))


def role_id(guid: str) -> str:
    return f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def storage_id(account: str) -> str:
    return f"{PROVIDERS}/Microsoft.Storage/storageAccounts/{account}"


def container_scope(account: str, container: str) -> str:
    return f"{storage_id(account)}/blobServices/default/containers/{container}"


def uai_id(name: str) -> str:
    return f"{PROVIDERS}/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"


def vnet_id(name: str) -> str:
    return f"{PROVIDERS}/Microsoft.Network/virtualNetworks/{name}"


def _rec(type_: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None):
    urn = f"urn:pulumi:plan::fl-sandbox::{type_}::{name}"
    merged = {**inputs, **(outputs or {})}
    return RecordedResource(urn, type_, name, None, True, merged.get("id"), inputs, merged)


def storage(name: str, purpose: str, role: str, silo: str | None = None, **extra: Any):
    tags = {TAG_ROLE: role, TAG_PURPOSE: purpose} | ({TAG_SILO: silo} if silo else {})
    inputs = {
        "accountName": name,
        "resourceGroupName": RG,
        "location": SILOS.get(silo or "", "westeurope"),
        "allowSharedKeyAccess": False,
        "allowBlobPublicAccess": False,
        "minimumTlsVersion": "TLS1_2",
        "isLocalUserEnabled": False,
        "isSftpEnabled": False,
        "publicNetworkAccess": "Enabled",
        "tags": tags,
    } | extra
    if inputs["publicNetworkAccess"] == "Disabled":
        inputs.setdefault("allowedCopyScope", "PrivateLink")
    return _rec(
        "azure-native:storage:StorageAccount", f"{name}-logical", inputs, {"id": storage_id(name)}
    )


def assignment(name: str, principal: str, guid: str, scope: str, description: str = ""):
    inputs = {
        "principalId": principal,
        "roleDefinitionId": role_id(guid),
        "scope": scope,
        "description": description,
    }
    return _rec("azure-native:authorization:RoleAssignment", name, inputs)


def identity(name: str, principal: str, role: str, silo: str | None = None):
    tags = {TAG_ROLE: role} | ({TAG_SILO: silo} if silo else {})
    inputs = {"resourceName": name, "resourceGroupName": RG, "tags": tags}
    outputs = {"id": uai_id(name), "principalId": principal, "clientId": principal[::-1]}
    return _rec("azure-native:managedidentity:UserAssignedIdentity", name, inputs, outputs)


def compute(silo: str, *, subnet_of: str | None = None, **inner: Any):
    properties: dict[str, Any] = {
        "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 2},
        "enableNodePublicIp": False,
    } | inner
    if subnet_of:
        properties["subnet"] = {"id": f"{vnet_id(f'vnet-{subnet_of}')}/subnets/compute"}
    inputs = {
        "computeName": f"cc-{silo}",
        "workspaceName": "ws",
        "resourceGroupName": RG,
        "location": SILOS[silo],
        "identity": {"type": "UserAssigned", "userAssignedIdentities": [uai_id(f"id-{silo}")]},
        "properties": {"computeType": "AmlCompute", "properties": properties},
        "tags": {TAG_ROLE: ROLE_SILO, TAG_SILO: silo},
    }
    return _rec("azure-native:machinelearningservices:Compute", f"{silo}-compute", inputs)


def vnet(silo: str, prefix: str):
    inputs = {
        "virtualNetworkName": f"vnet-{silo}",
        "resourceGroupName": RG,
        "addressSpace": {"addressPrefixes": [prefix]},
        "tags": {TAG_ROLE: ROLE_SILO, TAG_SILO: silo},
    }
    return _rec(
        "azure-native:network:VirtualNetwork",
        f"{silo}-vnet",
        inputs,
        {"id": vnet_id(f"vnet-{silo}")},
    )


def subnet(silo: str, name: str, prefix: str):
    inputs = {
        "subnetName": name,
        "virtualNetworkName": f"vnet-{silo}",
        "resourceGroupName": RG,
        "addressPrefix": prefix,
    }
    return _rec("azure-native:network:Subnet", f"{silo}-{name}", inputs)


def private_endpoint(account: str, silo: str):
    inputs = {
        "privateEndpointName": f"pe-{account}",
        "resourceGroupName": RG,
        "subnet": {"id": f"{vnet_id(f'vnet-{silo}')}/subnets/endpoints"},
        "privateLinkServiceConnections": [
            {"name": "blob", "privateLinkServiceId": storage_id(account), "groupIds": ["blob"]}
        ],
    }
    return _rec("azure-native:network:PrivateEndpoint", f"pe-{account}", inputs)


def sandbox(*, private: bool = False, networked: bool = True) -> list[RecordedResource]:
    """A correct two-silo sandbox (alpha, beta), optionally networked and private."""
    records = [
        identity("id-orch", ORCH_PRINCIPAL, ROLE_ORCHESTRATOR),
        _rec(
            "azure-native:machinelearningservices:Workspace",
            "workspace",
            {
                "workspaceName": "ws",
                "resourceGroupName": RG,
                "identity": {"type": "SystemAssigned"},
                "tags": {TAG_ROLE: ROLE_ORCHESTRATOR},
            },
            {"identity": {"type": "SystemAssigned", "principalId": WS_PRINCIPAL}},
        ),
        storage("stws", PURPOSE_WORKSPACE, ROLE_ORCHESTRATOR),
        storage(
            "stmodels",
            PURPOSE_MODELS,
            ROLE_ORCHESTRATOR,
            publicNetworkAccess="Disabled" if private else "Enabled",
        ),
        assignment(
            "orch-models",
            ORCH_PRINCIPAL,
            roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
            storage_id("stmodels"),
        ),
    ]
    for index, silo in enumerate(SILOS):
        principal = silo_principal(silo)
        account = f"st{silo}"
        records += [
            identity(f"id-{silo}", principal, ROLE_SILO, silo),
            storage(
                account,
                PURPOSE_SILO_DATA,
                ROLE_SILO,
                silo,
                publicNetworkAccess="Disabled" if private else "Enabled",
            ),
            assignment(
                f"{silo}-data", principal, roles.STORAGE_BLOB_DATA_CONTRIBUTOR, storage_id(account)
            ),
            assignment(
                f"{silo}-update",
                principal,
                roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
                container_scope("stmodels", f"silo-{silo}"),
            ),
            assignment(
                f"{silo}-global",
                principal,
                roles.STORAGE_BLOB_DATA_READER,
                container_scope("stmodels", "global"),
            ),
            compute(silo, subnet_of=silo if networked else None),
        ]
        if networked:
            records += [
                vnet(silo, f"10.{index + 1}.0.0/16"),
                subnet(silo, "compute", f"10.{index + 1}.0.0/24"),
                subnet(silo, "endpoints", f"10.{index + 1}.1.0/24"),
            ]
        if private:
            records.append(private_endpoint(account, silo))
    if private:
        records.append(private_endpoint("stmodels", "alpha"))
    return records


def federation(private: bool = False) -> dict[str, Any]:
    """The ``federation`` output matching ``sandbox()``."""
    return {
        "blueprint": "eyes-off" if private else "eyes-on",
        "silos": [{"name": s, "region": r} for s, r in SILOS.items()],
    }


def edited(records: list[RecordedResource], name: str, **changes: Any) -> list[RecordedResource]:
    """A copy of ``records`` where resource ``name`` has top-level props replaced."""
    result: list[RecordedResource] = []
    for record in records:
        if record.name == name:
            inputs = copy.deepcopy(record.inputs) | changes
            outputs = copy.deepcopy(record.outputs) | changes
            record = replace(record, inputs=inputs, outputs=outputs)
        result.append(record)
    return result
