"""Silo kind ``arc``: the site's own Kubernetes cluster, attached through Azure Arc.

``mode: onboard`` connects the cluster (``components.kubernetes.arc_onboarding``: connected
cluster, agents' Helm release, wait for Connected); ``mode: existing`` reads an already
connected cluster by id. Then, for both: the Azure ML extension, the jobs' namespace,
instance types, the attach as a Kubernetes compute running as the silo's identity, and, for
data on the premises, a read-only volume mounted into every job pod. The silo's storage
admits only the cluster's public egress addresses. The kubeconfig and the agents' private key
are stack secrets: they reach the Kubernetes provider and the Helm values as secrets, never
an output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import kubernetes, machinelearningservices

from components.kubernetes.arc_onboarding import ENCRYPTED, ArcOnboardingArgs, onboard
from components.kubernetes.data_volume import data_volume
from components.silos.kubernetes_silo import KubernetesSilo
from components.storage import StorageNetwork

NO_SELECTOR: dict[str, str] = {}
"""On-premises nodes carry the site's own labels: instance types name them if needed."""


def _secret(value: Any) -> pulumi.Output[str]:
    """A stack secret for the program: the decrypted text, or a stand-in when only its
    encrypted form is known (an offline plan of a stack file)."""
    return pulumi.Output.secret(value.plain if value.known else ENCRYPTED)


class ArcClusterSilo(KubernetesSilo):
    """A silo on an on-premises cluster attached through Azure Arc."""

    manifest_kind = "external"
    in_vnet = False

    def storage_network(self) -> StorageNetwork:
        ranges = [*self.args.spec.egress_ip_ranges]
        ranges += [r for r in self.args.uploader_ip_ranges if r not in ranges]
        return StorageNetwork("selected-networks", ip_ranges=tuple(ranges))

    def _compute(self) -> machinelearningservices.Compute:
        spec, args = self.args.spec, self.args
        arc = spec.arc
        provider_kubeconfig = _secret(arc.kubeconfig)
        self._kubeconfig = provider_kubeconfig
        after: list[pulumi.Resource] = []
        if arc.mode == "onboard":
            self.onboarding_provider = k8s.Provider(
                f"{self.name}-k8s-onboarding",
                kubeconfig=provider_kubeconfig,
                opts=pulumi.ResourceOptions(parent=self),
            )
            cluster, self.agents, self.connected = onboard(
                self.name,
                ArcOnboardingArgs(
                    cluster_name=spec.cluster_name,
                    resource_group_name=self.resource_group.name,
                    location=spec.region,
                    distribution=arc.distribution,
                    infrastructure=arc.infrastructure,
                    chart_version=arc.chart_version,
                    private_key_pem=arc.private_key.plain if arc.private_key.known else None,
                    subscription_id=args.subscription_id,
                    tenant_id=args.tenant_id,
                    tags=self.tags,
                ),
                provider=self.onboarding_provider,
                parent=self,
            )
            self.cluster = cluster
            cluster_id: pulumi.Input[str] = cluster.id
            cluster_rg: pulumi.Input[str] = self.resource_group.name
            cluster_rg_id: pulumi.Input[str] = self.resource_group.id
            after = [self.connected]
        else:
            self.cluster = kubernetes.ConnectedCluster.get(
                f"{self.name}-connected-cluster",
                arc.cluster_id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            cluster_id = arc.cluster_id
            cluster_rg = arc.cluster_id.split("/resourceGroups/", 1)[1].split("/", 1)[0]
            cluster_rg_id = arc.cluster_id.split("/providers/", 1)[0]
        return self.attach(
            cluster_id=cluster_id,
            cluster_name=spec.cluster_name,
            cluster_rp="Microsoft.Kubernetes",
            cluster_resource_group=cluster_rg,
            kubeconfig=provider_kubeconfig,
            selector=NO_SELECTOR,
            gpu=arc.gpu,
            extension_version=arc.extension_version,
            after=after,
            cluster_resource_group_id=cluster_rg_id,
        )

    def before_compute(
        self, provider: k8s.Provider, namespace: k8s.core.v1.Namespace
    ) -> Sequence[pulumi.Resource]:
        volume = self.args.spec.data_volume
        if volume is None:
            return ()
        nfs = (
            {"server": volume.nfs_server, "path": volume.nfs_path}
            if volume.nfs_server is not None
            else None
        )
        self.volume, self.claim = data_volume(
            self.name,
            namespace=namespace.metadata["name"],
            host_path=volume.host_path,
            nfs=nfs,
            capacity=volume.capacity,
            mount_path=volume.mount_path,
            provider=provider,
            parent=self,
            depends_on=[namespace],
        )
        return (self.volume, self.claim)

    def manifest_fields(self) -> dict[str, Any]:
        fields = super().manifest_fields()
        volume = self.args.spec.data_volume
        if volume is not None:
            fields["data_mount"] = volume.mount_path
        return fields
