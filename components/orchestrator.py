"""The orchestrator: the AML workspace and everything it needs, plus the model store.

Holds the workspace (system identity + a user-assigned identity as primary identity), its
storage, Key Vault (RBAC, purge protection), registry, Application Insights + Log Analytics,
the aggregation compute (scales to 0, runs as its own jobs identity with data roles only),
and the model store: one container per silo for that silo's updates and one ``global``
container for aggregated models, each registered as an identity-based datastore. In
networked blueprints it also owns the hub VNet, the private DNS zones every VNet links to,
and the private endpoints of its own resources; where resources are private, an image-build
cluster in the hub (Azure's serverless image build cannot reach them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import (
    applicationinsights,
    containerregistry,
    keyvault,
    machinelearningservices,
    managedidentity,
    operationalinsights,
    resources,
)

from components.aml import aml_cluster, identity_datastore
from components.dns import ZoneWrites, private_zones
from components.kubernetes.aks import (
    POOL_SELECTOR,
    AksArgs,
    admin_kubeconfig,
    aks_cluster,
)
from components.kubernetes.attach import AttachArgs, attach_cluster
from components.kubernetes.instance_types import InstanceType
from components.permissions import (
    WORKSPACE_IDENTITY,
    WORKSPACE_SYSTEM_IDENTITY,
    Grant,
    aks_identity,
    assign,
)
from components.silo_network import Outbound, PrivateEndpointSpec, SiloNetwork, SiloNetworkArgs
from components.storage import (
    PRIVATE,
    PUBLIC,
    StorageNetwork,
    private_container,
    uploaders_network,
)
from components.storage import secure_storage_account as storage_account
from components.vocabulary import naming
from components.vocabulary.access_targets import Target
from components.vocabulary.conventions import (
    GLOBAL_MODELS_CONTAINER,
    PURPOSE_AKS_CONTROL_PLANE,
    PURPOSE_IMAGE_BUILD,
    PURPOSE_JOBS,
    PURPOSE_MODELS,
    PURPOSE_WORKSPACE,
    SIGNING_KEYS_CONTAINER,
    WORKSPACE_LOGS_CONTAINER,
)
from components.vocabulary.posture import NetworkPosture
from components.vocabulary.tags import orchestrator_tags, with_purpose

AGGREGATION_NAMESPACE = "fl-aggregation"
"""Kubernetes namespace of aggregation jobs (blueprint 'confidential')."""

MODELS_DATASTORE = "fl_models"
"""Datastore of the model store's ``global`` container (the manifest's orchestrator datastore)."""


def updates_datastore(silo: str) -> str:
    """Datastore of the model-store container that receives ``silo``'s updates."""
    return naming.datastore("updates", silo)


@dataclass(frozen=True)
class OrchestratorArgs:
    base_name: str
    suffix: pulumi.Input[str]
    """Random per-deployment suffix for globally unique / soft-deleted names."""
    location: str
    silos: Sequence[str]
    compute_sku: str
    max_nodes: int
    tags: Mapping[str, str]
    subscription_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    workspace_grants: Sequence[Grant]
    """Permissions-table rows the workspace's identity needs before the workspace exists."""
    posture: NetworkPosture
    address_space: str | None = None
    extra_hub_prefixes: Sequence[str] = ()
    """More ranges of the hub VNet (the jump host's, ``components.jump_host``)."""
    outbound: Outbound = "default"
    submitter_ip_ranges: Sequence[str] = ()
    """Where submitters upload code from, admitted by the workspace storage's IP rules."""
    aggregation_pool: Any = None
    """An AKS pool spec (``blueprints.silo_kinds.aks.AksPool``): aggregation then runs on an AKS
    cluster in the hub (confidential nodes), attached as the ``orchestrator`` compute."""
    cluster_grants: Sequence[Grant] = ()
    """Permissions-table rows the aggregation cluster needs before it exists."""
    uploader_ip_ranges: Sequence[str] = ()
    """Addresses of the test-set uploaders the model store admits (``dataUploaders.global``)."""
    attach_grants: Sequence[Grant] = ()
    """The workspace identity's roles on the aggregation cluster, before its attach."""


class Orchestrator(pulumi.ComponentResource):
    """The AML workspace, its dependencies, the aggregation compute and the model store."""

    def __init__(
        self, name: str, args: OrchestratorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fl-sandbox:infra:Orchestrator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base, tags, posture = args.base_name, orchestrator_tags(args.tags), args.posture
        suffix = pulumi.Output.from_input(args.suffix)

        self.resource_group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=suffix.apply(
                lambda s: naming.resource_group(base, "orchestrator", s)
            ),
            location=args.location,
            tags=tags,
            opts=child,
        )
        rg = self.resource_group.name
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=naming.identity(base, "orchestrator"),
            resource_group_name=rg,
            location=args.location,
            tags=tags,
            opts=child,
        )
        self.jobs_identity = managedidentity.UserAssignedIdentity(
            f"{name}-jobs-identity",
            resource_name_=naming.identity(base, "orchestrator-jobs"),
            resource_group_name=rg,
            location=args.location,
            tags=with_purpose(tags, PURPOSE_JOBS),
            opts=child,
        )
        hbi = posture.workspace_private
        workspace_name = suffix.apply(lambda s: naming.workspace(base, s, hbi=hbi))
        # Known before the workspace exists, so its storage can admit it as a trusted instance.
        workspace_id = pulumi.Output.concat(
            "/subscriptions/",
            args.subscription_id,
            "/resourceGroups/",
            rg,
            "/providers/Microsoft.MachineLearningServices/workspaces/",
            workspace_name,
        )

        # Storage: the workspace's own, and the model store with a container per silo.
        ws_network = PUBLIC
        if posture.workspace_storage_access == "selected-networks":
            ws_network = StorageNetwork(
                "selected-networks",
                ip_ranges=tuple(args.submitter_ip_ranges),
                trusted_resources=(workspace_id,),
                tenant_id=args.tenant_id,
            )
        self.workspace_storage = storage_account(
            f"{name}-ws-storage",
            account_name=suffix.apply(lambda s: naming.storage_account(base, "ws", s)),
            resource_group_name=rg,
            location=args.location,
            network=ws_network,
            tags=with_purpose(tags, PURPOSE_WORKSPACE),
            parent=self,
        )
        self.logs_container = private_container(
            f"{name}-ws-logs",
            container_name=WORKSPACE_LOGS_CONTAINER,
            account=self.workspace_storage,
            resource_group_name=rg,
            parent=self,
        )
        self.models_storage = storage_account(
            f"{name}-models-storage",
            account_name=suffix.apply(lambda s: naming.storage_account(base, "models", s)),
            resource_group_name=rg,
            location=args.location,
            network=(
                (uploaders_network(args.uploader_ip_ranges) if args.uploader_ip_ranges else PRIVATE)
                if posture.storage_private
                else PUBLIC
            ),
            tags=with_purpose(tags, PURPOSE_MODELS),
            parent=self,
        )
        containers = {
            GLOBAL_MODELS_CONTAINER: private_container(
                f"{name}-models-global",
                container_name=GLOBAL_MODELS_CONTAINER,
                account=self.models_storage,
                resource_group_name=rg,
                parent=self,
            )
        }
        containers[SIGNING_KEYS_CONTAINER] = private_container(
            f"{name}-models-signing-keys",
            container_name=SIGNING_KEYS_CONTAINER,
            account=self.models_storage,
            resource_group_name=rg,
            parent=self,
        )
        for silo in args.silos:
            containers[naming.silo_container(silo)] = private_container(
                f"{name}-models-{silo}",
                container_name=naming.silo_container(silo),
                account=self.models_storage,
                resource_group_name=rg,
                parent=self,
            )
        self.model_containers = containers

        private_services = posture.workspace_private
        self.key_vault = keyvault.Vault(
            f"{name}-kv",
            vault_name=suffix.apply(lambda s: naming.key_vault(base, s)),
            resource_group_name=rg,
            location=args.location,
            properties={
                "tenant_id": args.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": 7,
                "enable_purge_protection": True,
                "public_network_access": "Disabled" if private_services else "Enabled",
                "network_acls": {
                    "default_action": "Deny" if private_services else "Allow",
                    "bypass": "AzureServices",
                },
            },
            tags=tags,
            opts=child,
        )
        self.registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=suffix.apply(lambda s: naming.container_registry(base, s)),
            resource_group_name=rg,
            location=args.location,
            sku={"name": posture.registry_sku},
            admin_user_enabled=False,
            public_network_access="Disabled" if private_services else "Enabled",
            network_rule_bypass_options="AzureServices",
            tags=tags,
            opts=child,
        )
        logs = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=suffix.apply(lambda s: naming.log_analytics(base, s)),
            resource_group_name=rg,
            location=args.location,
            sku={"name": "PerGB2018"},
            retention_in_days=30,
            tags=tags,
            opts=child,
        )
        self.app_insights = applicationinsights.Component(
            f"{name}-appi",
            resource_name_=suffix.apply(lambda s: naming.app_insights(base, s)),
            resource_group_name=rg,
            location=args.location,
            kind="web",
            application_type="web",
            ingestion_mode="LogAnalytics",
            workspace_resource_id=logs.id,
            tags=tags,
            opts=child,
        )

        # Networked blueprints: private DNS zones (linked to every VNet) and the hub VNet.
        zones = private_zones(
            name, posture.private_dns_zones, resource_group_name=rg, tags=tags, parent=self
        )
        self.zone_writes = ZoneWrites(zones, rg)
        self.network: SiloNetwork | None = None
        if posture.networked:
            if args.address_space is None:
                raise ValueError("a networked orchestrator needs an address space")
            self.network = SiloNetwork(
                f"{name}-hub",
                SiloNetworkArgs(
                    base_name=base,
                    label="hub",
                    resource_group_name=rg,
                    location=args.location,
                    address_space=args.address_space,
                    extra_address_prefixes=tuple(args.extra_hub_prefixes),
                    tags=tags,
                    zone_writes=self.zone_writes,
                    outbound=args.outbound,
                ),
                opts=child,
            )
            endpoints: list[PrivateEndpointSpec] = []
            if posture.storage_private:
                endpoints += [
                    PrivateEndpointSpec("ws", self.workspace_storage.id, "blob"),
                    PrivateEndpointSpec("ws", self.workspace_storage.id, "file"),
                    PrivateEndpointSpec("models", self.models_storage.id, "blob"),
                ]
            if private_services:
                endpoints += [
                    PrivateEndpointSpec("kv", self.key_vault.id, "vault"),
                    PrivateEndpointSpec("acr", self.registry.id, "registry"),
                ]
            for endpoint in endpoints:
                self.network.private_endpoint(endpoint)

        # The permissions table scopes the orchestrator owns; containers by their own ids.
        self.scopes: dict[Target, pulumi.Input[str]] = {
            Target("orchestrator-resource-group"): self.resource_group.id,
            Target("orchestrator-storage"): self.workspace_storage.id,
            Target(
                "orchestrator-storage-container", container=WORKSPACE_LOGS_CONTAINER
            ): self.logs_container.id,
            Target("models-storage"): self.models_storage.id,
            Target("key-vault"): self.key_vault.id,
            Target("container-registry"): self.registry.id,
            Target("app-insights"): self.app_insights.id,
        }
        for container_name, container in containers.items():
            self.scopes[Target("models-container", container=container_name)] = container.id

        # The workspace's primary identity must hold its roles before the workspace exists.
        workspace_roles = assign(
            args.workspace_grants,
            principals={WORKSPACE_IDENTITY: self.identity.principal_id},
            scopes=self.scopes,
            subscription_id=args.subscription_id,
            parent=self,
        )
        self.workspace = machinelearningservices.Workspace(
            f"{name}-workspace",
            workspace_name=workspace_name,
            resource_group_name=rg,
            location=args.location,
            friendly_name=f"{base} federated-learning orchestrator",
            identity={
                "type": "SystemAssigned,UserAssigned",
                "user_assigned_identities": [self.identity.id],
            },
            primary_user_assigned_identity=self.identity.id,
            storage_account=self.workspace_storage.id,
            key_vault=self.key_vault.id,
            application_insights=self.app_insights.id,
            container_registry=self.registry.id,
            system_datastores_auth_mode="Identity",
            public_network_access="Disabled" if private_services else "Enabled",
            # Azure accepts this flag only when the workspace is created: a change is planned
            # as a visible replacement instead of an update ARM would refuse halfway.
            hbi_workspace=private_services,
            image_build_compute=(
                naming.IMAGE_BUILD_COMPUTE if posture.image_build_compute else None
            ),
            sku={"name": "Basic", "tier": "Basic"},
            v1_legacy_mode=False,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(workspace_roles),
                # The name follows the flag, so the new workspace is created before the old
                # one is deleted (soft delete would block reusing the old name for 14 days).
                replace_on_changes=["hbiWorkspace"],
            ),
        )
        self.scopes[Target("workspace")] = self.workspace.id

        # Computes without public IPs need the workspace's private endpoint first (Azure).
        self.compute_prerequisites: list[pulumi.Resource] = []
        if posture.workspace_endpoint and self.network is not None:
            _, zone_group = self.network.private_endpoint(
                PrivateEndpointSpec("ws", self.workspace.id, "amlworkspace")
            )
            self.compute_prerequisites = [zone_group]
        # HBI with AKS: the system-assigned identity's storage roles, before any attach.
        self.compute_prerequisites.extend(
            assign(
                [g for g in args.attach_grants if g.grantee == WORKSPACE_SYSTEM_IDENTITY],
                principals={WORKSPACE_SYSTEM_IDENTITY: self.workspace.identity.principal_id},
                scopes=self.scopes,
                subscription_id=args.subscription_id,
                parent=self,
            )
        )

        subnet_id = self.network.compute_subnet.id if self.network else None
        if self.network is not None:
            self.scopes[Target("compute-subnet")] = self.network.compute_subnet.id
        self.aggregation_instance_type: str | None = None
        if args.aggregation_pool is not None:
            self.compute = self._aggregation_cluster(name, args, tags)
        else:
            self.compute = self._aggregation_compute(name, args, tags, subnet_id)
        self.image_builder: machinelearningservices.Compute | None = None
        self.image_builder_identity: managedidentity.UserAssignedIdentity | None = None
        if posture.image_build_compute:
            # Its own identity: any submitter may send a job to any compute of the workspace,
            # so the builder must not run as the workspace identity (vault, storage control).
            self.image_builder_identity = managedidentity.UserAssignedIdentity(
                f"{name}-image-builder-identity",
                resource_name_=naming.identity(base, "orchestrator-image-builder"),
                resource_group_name=rg,
                location=args.location,
                tags=with_purpose(tags, PURPOSE_IMAGE_BUILD),
                opts=child,
            )
            self.image_builder = aml_cluster(
                f"{name}-image-builder",
                compute_name=naming.IMAGE_BUILD_COMPUTE,
                workspace_location=args.location,
                location=args.location,
                vm_size=args.compute_sku,
                max_nodes=1,
                identity_id=self.image_builder_identity.id,
                workspace=self.workspace,
                resource_group_name=rg,
                subnet_id=subnet_id,
                node_public_ip=posture.node_public_ip,
                tags=with_purpose(tags, PURPOSE_IMAGE_BUILD),
                parent=self,
                depends_on=self.compute_prerequisites,
            )
        self._datastores(name, args, tags, containers)

        self.register_outputs(
            {
                "resource_group": rg,
                "workspace": self.workspace.name,
                "compute": self.compute.name,
                "identity_client_id": self.jobs_identity.client_id,
            }
        )

    def _aggregation_compute(
        self, name: str, args: OrchestratorArgs, tags: Mapping[str, str], subnet_id: Any
    ) -> machinelearningservices.Compute:
        """The aggregation cluster: Azure ML compute, scales to 0, runs as the jobs identity."""
        return aml_cluster(
            f"{name}-compute",
            compute_name=naming.ORCHESTRATOR_COMPUTE,
            workspace_location=args.location,
            location=args.location,
            vm_size=args.compute_sku,
            max_nodes=args.max_nodes,
            identity_id=self.jobs_identity.id,
            workspace=self.workspace,
            resource_group_name=self.resource_group.name,
            subnet_id=subnet_id,
            node_public_ip=args.posture.node_public_ip,
            tags=tags,
            parent=self,
            depends_on=self.compute_prerequisites,
        )

    def _aggregation_cluster(
        self, name: str, args: OrchestratorArgs, tags: Mapping[str, str]
    ) -> machinelearningservices.Compute:
        """Aggregation on an AKS cluster of confidential VMs in the hub, attached as the
        ``orchestrator`` compute running as the jobs identity."""
        assert self.network is not None  # the posture refuses confidential without VNets
        pool = args.aggregation_pool
        rg = self.resource_group.name
        control_plane = managedidentity.UserAssignedIdentity(
            f"{name}-aks-identity",
            resource_name_=naming.identity(args.base_name, "orchestrator-aks"),
            resource_group_name=rg,
            location=args.location,
            tags=with_purpose(tags, PURPOSE_AKS_CONTROL_PLANE),
            opts=pulumi.ResourceOptions(parent=self),
        )
        subnet_role = assign(
            args.cluster_grants,
            principals={aks_identity(None): control_plane.principal_id},
            scopes=self.scopes,
            subscription_id=args.subscription_id,
            parent=self,
        )
        self.aggregation_cluster, pool_resource = aks_cluster(
            f"{name}-aggregation",
            AksArgs(
                cluster_name=naming.network("aks", args.base_name, "orchestrator"),
                dns_prefix=naming.compact(f"{args.base_name}orch", 30),
                resource_group_name=rg,
                location=args.location,
                subnet_id=self.network.compute_subnet.id,
                identity=control_plane,
                system_vm_size="Standard_D2s_v5",
                pool_vm_size=pool.vm_size,
                pool_count=pool.node_count,
                pool_max_count=pool.max_count,
                kubernetes_version=None,
                tags=tags,
                nat_gateway=args.outbound == "nat-gateway",
            ),
            parent=self,
            depends_on=list(subnet_role),
        )
        aggregation = InstanceType(
            "aggregation", cpu="2", memory="8Gi", node_selector=POOL_SELECTOR
        )
        self.aggregation_instance_type = aggregation.name
        attached = attach_cluster(
            f"{name}-aggregation",
            AttachArgs(
                compute_name=naming.ORCHESTRATOR_COMPUTE,
                cluster_id=self.aggregation_cluster.id,
                cluster_name=self.aggregation_cluster.name,
                cluster_rp="Microsoft.ContainerService",
                cluster_resource_group=rg,
                cluster_location=args.location,
                kubeconfig=admin_kubeconfig(self.aggregation_cluster, rg),
                namespace=AGGREGATION_NAMESPACE,
                instance_types=[aggregation],
                identity_id=self.jobs_identity.id,
                gpu=False,
                node_selector=POOL_SELECTOR,
                extension_version=None,
                workspace=self.workspace,
                workspace_location=args.location,
                workspace_resource_group=rg,
                tags=tags,
                after=[pool_resource],
                compute_after=self.compute_prerequisites,
                attach_grants=[g for g in args.attach_grants if g.grantee == WORKSPACE_IDENTITY],
                workspace_principal=self.identity.principal_id,
                subscription_id=args.subscription_id,
            ),
            parent=self,
        )
        return attached.compute

    def _datastores(
        self,
        name: str,
        args: OrchestratorArgs,
        tags: Mapping[str, str],
        containers: Mapping[str, Any],
    ) -> None:
        rg = self.resource_group.name
        store_tags = with_purpose(tags, PURPOSE_MODELS)
        self.models_datastore = identity_datastore(
            f"{name}-models-datastore",
            datastore_name=MODELS_DATASTORE,
            account_name=self.models_storage.name,
            container_name=containers[GLOBAL_MODELS_CONTAINER].name,
            workspace=self.workspace,
            resource_group_name=rg,
            tags=store_tags,
            parent=self,
        )
        self.update_datastores = {
            silo: identity_datastore(
                f"{name}-updates-{silo}",
                datastore_name=updates_datastore(silo),
                account_name=self.models_storage.name,
                container_name=containers[naming.silo_container(silo)].name,
                workspace=self.workspace,
                resource_group_name=rg,
                tags=store_tags,
                parent=self,
            )
            for silo in args.silos
        }
