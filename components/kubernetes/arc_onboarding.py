"""Connect an on-premises cluster to Azure Arc, declaratively, as ``az connectedk8s connect``.

The chain (``docs/kubernetes-silos.md``, from the Azure CLI's connectedk8s source):
1. the ``ConnectedCluster`` in ARM, with a system identity and the agents' public key
   (``agentPublicKeyCertificate``: base64 PKCS#1 DER, ``components.arc_keys``);
2. the ``azure-arc`` Helm release (v3 ``Release``, which keeps Helm hooks: the agents'
   uninstall relies on a pre-delete hook) in namespace ``azure-arc-release``, from the
   agents' OCI chart at a pinned version, with the private key as a secret value, agent
   auto-update off (otherwise every later preview shows drift) and cluster connect on;
3. a wait until ARM reports the cluster ``Connected`` (``components.kubernetes.arc_wait``).
The resource providers Microsoft.Kubernetes, Microsoft.KubernetesConfiguration and
Microsoft.ExtendedLocation must be registered once per subscription (docs/infrastructure.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import kubernetes

from components.arc_keys import agent_private_key_pem, agent_public_key_certificate
from components.kubernetes.arc_wait import ArcConnected

CHART = "oci://mcr.microsoft.com/azurearck8s/batch1/stable/v2/azure-arc-k8sagents"
RELEASE_NAME = "azure-arc"
RELEASE_NAMESPACE = "azure-arc-release"
PLACEHOLDER_PUBLIC_KEY = "derived-at-deployment-from-the-secret-private-key"
ENCRYPTED = "<encrypted in stack config>"
"""Stands in for a stack secret whose decrypted text is unknown (an offline plan)."""


@dataclass(frozen=True)
class ArcOnboardingArgs:
    cluster_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    distribution: str
    infrastructure: str
    chart_version: str
    private_key_pem: str | None
    """The agents' key (decrypted stack config); None when only its encrypted form is known
    (an offline plan of a stack file), then the public key is shown as a placeholder."""
    subscription_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    tags: Mapping[str, str]


def agents_values(args: ArcOnboardingArgs, private_key: pulumi.Input[str]) -> dict[str, object]:
    """The chart's values, as ``az connectedk8s connect`` sets them."""
    return {
        "global": {
            "subscriptionId": args.subscription_id,
            "kubernetesDistro": args.distribution,
            "kubernetesInfra": args.infrastructure,
            "resourceGroupName": args.resource_group_name,
            "resourceName": args.cluster_name,
            "location": args.location,
            "tenantId": args.tenant_id,
            "onboardingPrivateKey": private_key,
            "azureEnvironment": "AZUREPUBLICCLOUD",
        },
        "systemDefaultValues": {
            "spnOnboarding": False,
            "clusterconnect-agent": {"enabled": True},
            "azureArcAgents": {"autoUpdate": False},
        },
    }


def onboard(
    name: str,
    args: ArcOnboardingArgs,
    *,
    provider: k8s.Provider,
    parent: pulumi.Resource,
) -> tuple[kubernetes.ConnectedCluster, k8s.helm.v3.Release, ArcConnected]:
    """Declare the connected cluster, the agents' release and the wait, in that order."""
    key_pem = args.private_key_pem
    public_key = agent_public_key_certificate(key_pem) if key_pem is not None else None
    cluster = kubernetes.ConnectedCluster(
        f"{name}-connected-cluster",
        cluster_name=args.cluster_name,
        resource_group_name=args.resource_group_name,
        location=args.location,
        identity={"type": "SystemAssigned"},
        agent_public_key_certificate=public_key or PLACEHOLDER_PUBLIC_KEY,
        distribution=args.distribution,
        infrastructure=args.infrastructure,
        tags=dict(args.tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    private_key = pulumi.Output.secret(
        agent_private_key_pem(key_pem) if key_pem is not None else ENCRYPTED
    )
    release = k8s.helm.v3.Release(
        f"{name}-arc-agents",
        name=RELEASE_NAME,
        chart=CHART,
        version=args.chart_version,
        namespace=RELEASE_NAMESPACE,
        create_namespace=True,
        values=agents_values(args, private_key),
        timeout=1800,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[cluster]),
    )
    connected = ArcConnected(
        f"{name}-arc-connected",
        cluster_id=cluster.id,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[release]),
    )
    return cluster, release, connected
