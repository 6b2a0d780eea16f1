"""An AKS cluster for FL jobs: a small system pool and a user pool the jobs run on.

- The control plane runs as its own user-assigned identity, which holds Network Contributor
  on the subnet its nodes join, granted before the cluster (AKS docs, "Use a managed identity
  in AKS": with a subnet of your own, the cluster identity needs that role; ARM does not grant
  it for you). Azure ML rejects AKS clusters that use a service principal.
- Local accounts stay enabled: the Azure ML extension needs them (Azure ML docs, AKS
  prerequisites).
- Azure CNI overlay: nodes take addresses from the silo's compute subnet, pods from an overlay
  range, so a silo's /24 subnet is enough.
- The OIDC issuer and workload identity are on (cluster features), but no identity of the
  sandbox gets a federated credential: Azure ML jobs do not use workload identity (the
  extension gets their tokens), and a credential would let anyone who may create pods in the
  namespace (a cluster admin, the workspace identity that attach needs as AKS Cluster Admin)
  act as that identity.
- The user pool carries the ``fl-sandbox/pool: fl`` label the extension's and the instance
  types' node selectors point at; a confidential VM size (DCasv5/DCadsv5) alone makes the
  pool confidential (AKS docs, "Confidential VM node pools").
- The admin kubeconfig comes from ``listManagedClusterAdminCredentials`` and stays a secret.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import containerservice, managedidentity

POOL_LABEL = "fl-sandbox/pool"
POOL_VALUE = "fl"
POOL_SELECTOR = {POOL_LABEL: POOL_VALUE}
POD_CIDR = "192.168.0.0/16"
SERVICE_CIDR = "172.16.0.0/16"
DNS_SERVICE_IP = "172.16.0.10"


@dataclass(frozen=True)
class AksArgs:
    cluster_name: str
    dns_prefix: str
    resource_group_name: pulumi.Input[str]
    location: str
    subnet_id: pulumi.Input[str]
    identity: managedidentity.UserAssignedIdentity
    system_vm_size: str
    pool_vm_size: str
    pool_count: int
    pool_max_count: int | None
    kubernetes_version: str | None
    tags: Mapping[str, str]
    nat_gateway: bool = False
    """The subnet's outbound path is a NAT gateway (``computeOutbound: nat-gateway``): the
    cluster then uses it (outboundType userAssignedNATGateway) instead of creating a public
    load balancer with its own outbound IP (Azure's rule 43)."""


def aks_cluster(
    name: str,
    args: AksArgs,
    *,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> tuple[containerservice.ManagedCluster, containerservice.AgentPool]:
    """The cluster (system pool) and the FL user pool, both in ``args.subnet_id``."""
    cluster = containerservice.ManagedCluster(
        f"{name}-aks",
        resource_name_=args.cluster_name,
        resource_group_name=args.resource_group_name,
        location=args.location,
        dns_prefix=args.dns_prefix,
        kubernetes_version=args.kubernetes_version,
        identity={"type": "UserAssigned", "user_assigned_identities": [args.identity.id]},
        agent_pool_profiles=[
            {
                "name": "system",
                "mode": "System",
                "vm_size": args.system_vm_size,
                "count": 1,
                "os_type": "Linux",
                "type": "VirtualMachineScaleSets",
                "vnet_subnet_id": args.subnet_id,
                "enable_node_public_ip": False,
            }
        ],
        network_profile={
            "network_plugin": "azure",
            "network_plugin_mode": "overlay",
            "pod_cidr": POD_CIDR,
            "service_cidr": SERVICE_CIDR,
            "dns_service_ip": DNS_SERVICE_IP,
            "outbound_type": "userAssignedNATGateway" if args.nat_gateway else "loadBalancer",
        },
        enable_rbac=True,
        disable_local_accounts=False,
        oidc_issuer_profile={"enabled": True},
        security_profile={"workload_identity": {"enabled": True}},
        tags=dict(args.tags),
        # The user pool is a separate AgentPool: a later update of the inline profiles would
        # try to drop it (pulumi-azure-native#2719; Azure's rule 27).
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=list(depends_on), ignore_changes=["agentPoolProfiles"]
        ),
    )
    scaling: dict[str, object] = {"count": args.pool_count}
    if args.pool_max_count is not None:
        scaling = {
            "count": args.pool_count,
            "enable_auto_scaling": True,
            "min_count": args.pool_count,
            "max_count": args.pool_max_count,
        }
    pool = containerservice.AgentPool(
        f"{name}-pool",
        resource_name_=cluster.name,
        resource_group_name=args.resource_group_name,
        agent_pool_name="fl",
        mode="User",
        vm_size=args.pool_vm_size,
        os_type="Linux",
        type="VirtualMachineScaleSets",
        vnet_subnet_id=args.subnet_id,
        enable_node_public_ip=False,
        node_labels=dict(POOL_SELECTOR),
        tags=dict(args.tags),
        opts=pulumi.ResourceOptions(parent=parent),
        **scaling,
    )
    return cluster, pool


def admin_kubeconfig(
    cluster: containerservice.ManagedCluster, resource_group_name: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The cluster's admin kubeconfig, decoded, as a secret."""
    credentials = containerservice.list_managed_cluster_admin_credentials_output(
        resource_group_name=resource_group_name, resource_name=cluster.name
    )
    return pulumi.Output.secret(
        credentials.kubeconfigs.apply(lambda configs: base64.b64decode(configs[0].value).decode())
    )
