"""Attach a Kubernetes cluster to the workspace: extension, namespace, instance types, compute.

Shared by the Kubernetes silo kinds and the confidential orchestrator. Order (Azure ML docs and
``docs/kubernetes-silos.md``): (cluster ready) -> extension -> namespace and
instance types (the extension installs their CRD) -> compute attach (the namespace must exist
first). Every in-cluster object goes through the cluster's own Kubernetes provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import kubernetesconfiguration, machinelearningservices

from components.kubernetes.aml_extension import ClusterRp, aml_extension
from components.kubernetes.attached_compute import kubernetes_compute
from components.kubernetes.instance_types import InstanceType, instance_type_resources
from components.permissions import WORKSPACE_IDENTITY, Grant, assign
from components.vocabulary.access_targets import Target


@dataclass(frozen=True)
class AttachArgs:
    compute_name: str
    cluster_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    cluster_rp: ClusterRp
    cluster_resource_group: pulumi.Input[str]
    cluster_location: str
    """The cluster's region (the silo's), where the compute's jobs run."""
    kubeconfig: pulumi.Input[str]
    namespace: str
    instance_types: Sequence[InstanceType]
    identity_id: pulumi.Input[str]
    gpu: bool
    node_selector: Mapping[str, str]
    extension_version: str | None
    workspace: machinelearningservices.Workspace
    workspace_location: str
    workspace_resource_group: pulumi.Input[str]
    tags: Mapping[str, str]
    after: Sequence[pulumi.Resource] = ()
    """What the extension waits for (the user pool, the Arc agents connected)."""
    compute_after: Sequence[pulumi.Resource] = ()
    """More the compute waits for (the workspace's private endpoint)."""
    attach_grants: Sequence[Grant] = ()
    """The workspace identity's roles on this cluster (Azure's rule 20)."""
    workspace_principal: pulumi.Input[str] | None = None
    cluster_resource_group_id: pulumi.Input[str] | None = None
    """The cluster's resource group (an Arc cluster's Relay lives there)."""
    subscription_id: pulumi.Input[str] = ""
    silo: str | None = None
    """The silo the cluster belongs to (None: the orchestrator's)."""
    install_prom_op: bool = True
    """The extension's installPromOp (false: the cluster already runs the operator)."""


@dataclass
class Attached:
    """The objects an attach created, for tests and for more in-cluster objects."""

    provider: k8s.Provider
    extension: kubernetesconfiguration.Extension
    namespace: k8s.core.v1.Namespace
    instance_types: list[k8s.apiextensions.CustomResource]
    compute: machinelearningservices.Compute


def attach_cluster(
    name: str,
    args: AttachArgs,
    *,
    parent: pulumi.Resource,
    before_compute: Callable[[k8s.Provider, k8s.core.v1.Namespace], Sequence[pulumi.Resource]]
    | None = None,
) -> Attached:
    provider = k8s.Provider(
        f"{name}-k8s", kubeconfig=args.kubeconfig, opts=pulumi.ResourceOptions(parent=parent)
    )
    extension = aml_extension(
        f"{name}-azureml-extension",
        cluster_name=args.cluster_name,
        cluster_rp=args.cluster_rp,
        resource_group_name=args.cluster_resource_group,
        gpu=args.gpu,
        node_selector=args.node_selector,
        version=args.extension_version,
        parent=parent,
        depends_on=args.after,
        install_prom_op=args.install_prom_op,
    )
    namespace = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata={"name": args.namespace},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[extension]),
    )
    types = instance_type_resources(
        name, args.instance_types, provider=provider, parent=parent, depends_on=[extension]
    )
    extra = list(before_compute(provider, namespace)) if before_compute is not None else []
    extra.extend(_attach_roles(args, parent))
    compute = kubernetes_compute(
        f"{name}-compute",
        compute_name=args.compute_name,
        cluster_id=args.cluster_id,
        cluster_location=args.cluster_location,
        namespace=args.namespace,
        instance_types=args.instance_types,
        identity_id=args.identity_id,
        workspace=args.workspace,
        workspace_location=args.workspace_location,
        resource_group_name=args.workspace_resource_group,
        tags=args.tags,
        parent=parent,
        depends_on=[namespace, *types, *extra, *args.compute_after],
    )
    return Attached(provider, extension, namespace, types, compute)


def _attach_roles(args: AttachArgs, parent: pulumi.Resource) -> list[pulumi.Resource]:
    """The workspace identity's roles on the cluster (and an Arc cluster's resource group),
    which Azure ML needs before it attaches the cluster."""
    if not args.attach_grants:
        return []
    if args.workspace_principal is None:
        raise ValueError("attach grants need the workspace identity's principal id")
    scopes: dict[Target, pulumi.Input[str]] = {
        Target("kubernetes-cluster", silo=args.silo): args.cluster_id
    }
    if args.cluster_resource_group_id is not None:
        scopes[Target("cluster-resource-group", silo=args.silo)] = args.cluster_resource_group_id
    return list(
        assign(
            args.attach_grants,
            principals={WORKSPACE_IDENTITY: args.workspace_principal},
            scopes=scopes,
            subscription_id=args.subscription_id,
            parent=parent,
        )
    )
