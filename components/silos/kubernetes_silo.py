"""What the Kubernetes silo kinds share once they have a cluster: its attach to the workspace
(``components.kubernetes.attach``) with the silo's identity, namespace and instance types, and
the manifest fields (compute type, default instance type)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import machinelearningservices

from components.kubernetes.aml_extension import ClusterRp
from components.kubernetes.attach import AttachArgs, Attached, attach_cluster
from components.kubernetes.instance_types import InstanceType
from components.silos.base import SiloComponent
from components.vocabulary import naming


def instance_types(specs: Sequence[Any], selector: Mapping[str, str]) -> list[InstanceType]:
    """The spec's instance types, each pinned to ``selector`` unless it names its own."""
    return [
        InstanceType(
            name=t.name,
            cpu=t.cpu,
            memory=t.memory,
            gpu=t.gpu,
            node_selector=dict(t.node_selector) or dict(selector),
        )
        for t in specs
    ]


class KubernetesSilo(SiloComponent):
    """A silo whose compute is a Kubernetes cluster attached to the workspace."""

    attached: Attached
    types: list[InstanceType]

    def attach(
        self,
        *,
        cluster_id: pulumi.Input[str],
        cluster_name: pulumi.Input[str],
        cluster_rp: ClusterRp,
        cluster_resource_group: pulumi.Input[str],
        kubeconfig: pulumi.Input[str],
        selector: Mapping[str, str],
        gpu: bool,
        extension_version: str | None,
        after: Sequence[pulumi.Resource],
        cluster_resource_group_id: pulumi.Input[str] | None = None,
    ) -> machinelearningservices.Compute:
        spec, args = self.args.spec, self.args
        self.types = instance_types(spec.instance_types, selector)
        self.attached = attach_cluster(
            self.name,
            AttachArgs(
                compute_name=naming.compute(self.silo),
                cluster_id=cluster_id,
                cluster_name=cluster_name,
                cluster_rp=cluster_rp,
                cluster_resource_group=cluster_resource_group,
                cluster_location=spec.region,
                kubeconfig=kubeconfig,
                namespace=spec.namespace,
                instance_types=self.types,
                identity_id=self.identity.id,
                gpu=gpu,
                node_selector=selector,
                extension_version=extension_version,
                install_prom_op=spec.install_prom_op,
                workspace=args.workspace,
                workspace_location=args.workspace_location,
                workspace_resource_group=args.workspace_resource_group,
                tags=self.tags,
                after=after,
                compute_after=args.compute_prerequisites,
                attach_grants=args.attach_grants,
                workspace_principal=args.workspace_principal,
                cluster_resource_group_id=cluster_resource_group_id,
                subscription_id=args.subscription_id,
                silo=self.silo,
            ),
            parent=self,
            before_compute=self.before_compute,
        )
        return self.attached.compute

    def before_compute(
        self, provider: k8s.Provider, namespace: k8s.core.v1.Namespace
    ) -> Sequence[pulumi.Resource]:
        """In-cluster objects a kind adds before the attach (an on-premises data volume)."""
        return ()

    def manifest_fields(self) -> dict[str, Any]:
        first = self.types[0]  # the silo's steps run on its first instance type
        return {"compute_type": "kubernetes", "instance_type": first.name, "gpus": first.gpu}
