"""The Azure resource types the sandbox declares: type tokens, ARM name inputs, ARM id paths.

One table shared by the mock runtime (which makes up ARM ids the way Azure builds them) and
the resource graph the checks read (which derives the same ids from names), so the two can
never disagree about where a resource lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArmType:
    """One azure-native resource type."""

    token: str
    name_key: str
    """The input that holds the name Azure sees."""
    path: str
    """ARM id below the resource group; ``{key}`` is that input (the own name included)."""


def _t(token: str, name_key: str, path: str) -> ArmType:
    return ArmType(f"azure-native:{token}", name_key, path)


STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
COMPUTE = "azure-native:machinelearningservices:Compute"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
DATASTORE = "azure-native:machinelearningservices:Datastore"
KEY_VAULT = "azure-native:keyvault:Vault"
CONTAINER_REGISTRY = "azure-native:containerregistry:Registry"
VIRTUAL_NETWORK = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
PRIVATE_DNS_ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
VNET_PEERING = "azure-native:network:VirtualNetworkPeering"
NAT_GATEWAY = "azure-native:network:NatGateway"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
BASTION_HOST = "azure-native:network:BastionHost"
NETWORK_INTERFACE = "azure-native:network:NetworkInterface"
VIRTUAL_MACHINE = "azure-native:compute:VirtualMachine"
VM_EXTENSION = "azure-native:compute:VirtualMachineExtension"
PRIVATE_DNS_ZONE = "azure-native:privatedns:PrivateZone"
PRIVATE_DNS_LINK = "azure-native:privatedns:VirtualNetworkLink"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
CONNECTED_CLUSTER = "azure-native:kubernetes:ConnectedCluster"
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
K8S_EXTENSION = "azure-native:kubernetesconfiguration:Extension"
FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
DYNAMIC_RESOURCE = "pulumi-python:dynamic:Resource"
"""A Python dynamic resource (the wait for an Arc cluster's connectivity)."""
K8S_NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_INSTANCE_TYPE = "kubernetes:amlarc.azureml.com/v1alpha1:InstanceType"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
APP_INSIGHTS = "azure-native:applicationinsights:Component"

ARM_TYPES: dict[str, ArmType] = {
    t.token: t
    for t in (
        _t(
            "storage:StorageAccount",
            "accountName",
            "Microsoft.Storage/storageAccounts/{accountName}",
        ),
        _t(
            "storage:BlobContainer",
            "containerName",
            "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers/"
            "{containerName}",
        ),
        _t(
            "managedidentity:UserAssignedIdentity",
            "resourceName",
            "Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}",
        ),
        _t("keyvault:Vault", "vaultName", "Microsoft.KeyVault/vaults/{vaultName}"),
        _t(
            "containerregistry:Registry",
            "registryName",
            "Microsoft.ContainerRegistry/registries/{registryName}",
        ),
        _t(
            "machinelearningservices:Workspace",
            "workspaceName",
            "Microsoft.MachineLearningServices/workspaces/{workspaceName}",
        ),
        _t(
            "machinelearningservices:Compute",
            "computeName",
            "Microsoft.MachineLearningServices/workspaces/{workspaceName}/computes/{computeName}",
        ),
        _t(
            "machinelearningservices:Datastore",
            "name",
            "Microsoft.MachineLearningServices/workspaces/{workspaceName}/datastores/{name}",
        ),
        _t(
            "network:VirtualNetwork",
            "virtualNetworkName",
            "Microsoft.Network/virtualNetworks/{virtualNetworkName}",
        ),
        _t(
            "network:Subnet",
            "subnetName",
            "Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}",
        ),
        _t(
            "network:VirtualNetworkPeering",
            "virtualNetworkPeeringName",
            "Microsoft.Network/virtualNetworks/{virtualNetworkName}/virtualNetworkPeerings/"
            "{virtualNetworkPeeringName}",
        ),
        _t(
            "network:NetworkSecurityGroup",
            "networkSecurityGroupName",
            "Microsoft.Network/networkSecurityGroups/{networkSecurityGroupName}",
        ),
        _t(
            "network:PrivateEndpoint",
            "privateEndpointName",
            "Microsoft.Network/privateEndpoints/{privateEndpointName}",
        ),
        _t(
            "network:PrivateDnsZoneGroup",
            "privateDnsZoneGroupName",
            "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/"
            "{privateDnsZoneGroupName}",
        ),
        _t(
            "network:NatGateway", "natGatewayName", "Microsoft.Network/natGateways/{natGatewayName}"
        ),
        _t(
            "network:PublicIPAddress",
            "publicIpAddressName",
            "Microsoft.Network/publicIPAddresses/{publicIpAddressName}",
        ),
        _t(
            "network:BastionHost",
            "bastionHostName",
            "Microsoft.Network/bastionHosts/{bastionHostName}",
        ),
        _t(
            "network:NetworkInterface",
            "networkInterfaceName",
            "Microsoft.Network/networkInterfaces/{networkInterfaceName}",
        ),
        _t(
            "compute:VirtualMachine",
            "vmName",
            "Microsoft.Compute/virtualMachines/{vmName}",
        ),
        _t(
            "compute:VirtualMachineExtension",
            "vmExtensionName",
            "Microsoft.Compute/virtualMachines/{vmName}/extensions/{vmExtensionName}",
        ),
        _t(
            "privatedns:PrivateZone",
            "privateZoneName",
            "Microsoft.Network/privateDnsZones/{privateZoneName}",
        ),
        _t(
            "privatedns:VirtualNetworkLink",
            "virtualNetworkLinkName",
            "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/"
            "{virtualNetworkLinkName}",
        ),
        _t(
            "operationalinsights:Workspace",
            "workspaceName",
            "Microsoft.OperationalInsights/workspaces/{workspaceName}",
        ),
        _t(
            "applicationinsights:Component",
            "resourceName",
            "Microsoft.Insights/components/{resourceName}",
        ),
        _t(
            "kubernetes:ConnectedCluster",
            "clusterName",
            "Microsoft.Kubernetes/connectedClusters/{clusterName}",
        ),
        _t(
            "containerservice:ManagedCluster",
            "resourceName",
            "Microsoft.ContainerService/managedClusters/{resourceName}",
        ),
        _t(
            "containerservice:AgentPool",
            "agentPoolName",
            "Microsoft.ContainerService/managedClusters/{resourceName}/agentPools/{agentPoolName}",
        ),
        _t(
            "kubernetesconfiguration:Extension",
            "extensionName",
            "Microsoft.Kubernetes/connectedClusters/{clusterName}/providers/"
            "Microsoft.KubernetesConfiguration/extensions/{extensionName}",
        ),
        _t(
            "managedidentity:FederatedIdentityCredential",
            "federatedIdentityCredentialResourceName",
            "Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}/"
            "federatedIdentityCredentials/{federatedIdentityCredentialResourceName}",
        ),
        _t(
            "authorization:RoleAssignment",
            "roleAssignmentName",
            "Microsoft.Authorization/roleAssignments/{roleAssignmentName}",
        ),
    )
}

# For types not in the table: the inputs that usually carry a name, most specific first
# (a child resource also names its parent, and its own name must win).
FALLBACK_NAME_KEYS = (
    "containerName",
    "computeName",
    "subnetName",
    "name",
    "resourceName",
    "clusterName",
    "extensionName",
    "agentPoolName",
)


def arm_name(type_token: str, inputs: Mapping[str, Any], default: str) -> str:
    """The name Azure sees: the type's name input, else a usual name input, else ``default``."""
    if type_token == RESOURCE_GROUP:
        value = inputs.get("resourceGroupName")
        return value if isinstance(value, str) and value else default
    known = ARM_TYPES.get(type_token)
    keys = (known.name_key,) if known else FALLBACK_NAME_KEYS
    for key in keys:
        value = inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return default


def arm_path(type_token: str, inputs: Mapping[str, Any], name: str) -> str | None:
    """The ARM id path below the resource group, or None for an unknown type or a missing
    parent name. ``name`` fills the type's own name input."""
    known = ARM_TYPES.get(type_token)
    if known is None:
        return None
    values = {k: v for k, v in inputs.items() if isinstance(v, str)}
    values[known.name_key] = name
    try:
        return known.path.format(**values)
    except KeyError:
        return None
