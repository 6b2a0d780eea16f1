"""Silo kind ``aks``: an AKS cluster in the silo's VNet, optionally on confidential nodes.

The cluster (``components.kubernetes.aks``) joins the silo's compute subnet, its control
plane running as its own identity that holds Network Contributor on that subnet first (the
permissions table's ``before_cluster`` row). The cluster is attached as a Kubernetes compute
running as the silo's identity, its instance types pinned to the FL pool. The silo's identity
gets no workload-identity federated credential: Azure ML jobs do not use one (the extension
gets their tokens itself, Microsoft Learn: managed identity on Kubernetes compute), and one
would let anyone who may create pods in the namespace act as the silo.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import machinelearningservices, managedidentity

from components.kubernetes.aks import (
    POOL_SELECTOR,
    AksArgs,
    admin_kubeconfig,
    aks_cluster,
)
from components.permissions import aks_identity
from components.silos.kubernetes_silo import KubernetesSilo
from components.vocabulary import naming
from components.vocabulary.conventions import PURPOSE_AKS_CONTROL_PLANE
from components.vocabulary.tags import with_purpose
from components.vocabulary.vm_sizes import vm_size


class AksClusterSilo(KubernetesSilo):
    """A silo on an AKS cluster of its own."""

    def _compute(self) -> machinelearningservices.Compute:
        spec, args = self.args.spec, self.args
        assert self.network is not None  # the spec refuses AKS silos without VNets
        control_plane = managedidentity.UserAssignedIdentity(
            f"{self.name}-aks-identity",
            resource_name_=naming.identity(args.base_name, f"{self.silo}-aks"),
            resource_group_name=self.resource_group.name,
            location=spec.region,
            tags=with_purpose(self.tags, PURPOSE_AKS_CONTROL_PLANE),
            opts=pulumi.ResourceOptions(parent=self),
        )
        subnet_role = self.grant_before({aks_identity(self.silo): control_plane.principal_id})
        self.cluster, self.pool = aks_cluster(
            self.name,
            AksArgs(
                cluster_name=naming.network("aks", args.base_name, self.silo),
                dns_prefix=naming.compact(f"{args.base_name}{self.silo}", 30),
                resource_group_name=self.resource_group.name,
                location=spec.region,
                subnet_id=self.network.compute_subnet.id,
                identity=control_plane,
                system_vm_size=spec.system_vm_size,
                pool_vm_size=spec.pool.vm_size,
                pool_count=spec.pool.node_count,
                pool_max_count=spec.pool.max_count,
                kubernetes_version=spec.kubernetes_version,
                tags=self.tags,
                nat_gateway=args.outbound == "nat-gateway",
            ),
            parent=self,
            depends_on=subnet_role,
        )
        return self.attach(
            cluster_id=self.cluster.id,
            cluster_name=self.cluster.name,
            cluster_rp="Microsoft.ContainerService",
            cluster_resource_group=self.resource_group.name,
            kubeconfig=admin_kubeconfig(self.cluster, self.resource_group.name),
            selector=POOL_SELECTOR,
            gpu=vm_size(spec.pool.vm_size).gpus > 0,
            extension_version=None,
            after=[self.pool],
        )
