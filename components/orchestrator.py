"""The orchestrator: the AML workspace and everything it needs, plus the model store.

Holds the workspace (system identity + a user-assigned identity as primary identity), its
storage, Key Vault (RBAC, purge protection), registry, Application Insights + Log Analytics,
the aggregation compute (scales to 0), and the model store: one container per silo for that
silo's updates and one ``global`` container for aggregated models, each registered as an
identity-based datastore. In networked blueprints it also owns the hub VNet and the private
DNS zones every VNet links to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import (
    applicationinsights,
    containerregistry,
    keyvault,
    machinelearningservices,
    managedidentity,
    operationalinsights,
    privatedns,
    resources,
)

from components import naming
from components.aml import aml_cluster, identity_datastore
from components.conventions import (
    GLOBAL_MODELS_CONTAINER,
    PURPOSE_MODELS,
    PURPOSE_WORKSPACE,
)
from components.permissions import ORCHESTRATOR_IDENTITY, Grant, assign
from components.silo_network import PrivateEndpointSpec, SiloNetwork, SiloNetworkArgs
from components.storage import container_scope, private_container, secure_storage_account
from components.tags import orchestrator_tags, with_purpose

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
    networked: bool = False
    storage_private: bool = False
    node_public_ip: bool = True
    address_space: str | None = None
    private_dns_zones: Sequence[str] = ()


class Orchestrator(pulumi.ComponentResource):
    """The AML workspace, its dependencies, the aggregation compute and the model store."""

    def __init__(
        self, name: str, args: OrchestratorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fl-sandbox:infra:Orchestrator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base, tags = args.base_name, orchestrator_tags(args.tags)
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

        # Storage: the workspace's own, and the model store with a container per silo.
        self.workspace_storage = secure_storage_account(
            f"{name}-ws-storage",
            account_name=suffix.apply(lambda s: naming.storage_account(base, "ws", s)),
            resource_group_name=rg,
            location=args.location,
            private=args.storage_private,
            tags=with_purpose(tags, PURPOSE_WORKSPACE),
            parent=self,
        )
        self.models_storage = secure_storage_account(
            f"{name}-models-storage",
            account_name=suffix.apply(lambda s: naming.storage_account(base, "models", s)),
            resource_group_name=rg,
            location=args.location,
            private=args.storage_private,
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
        for silo in args.silos:
            containers[naming.silo_container(silo)] = private_container(
                f"{name}-models-{silo}",
                container_name=naming.silo_container(silo),
                account=self.models_storage,
                resource_group_name=rg,
                parent=self,
            )
        self.model_containers = containers

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
                "public_network_access": "Enabled",
            },
            tags=tags,
            opts=child,
        )
        self.registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=suffix.apply(lambda s: naming.container_registry(base, s)),
            resource_group_name=rg,
            location=args.location,
            sku={"name": "Basic"},
            admin_user_enabled=False,
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
        self.dns_zones = {
            zone: privatedns.PrivateZone(
                f"{name}-zone-{zone.split('.')[1]}",
                private_zone_name=zone,
                resource_group_name=rg,
                location="global",
                tags=tags,
                opts=child,
            )
            for zone in args.private_dns_zones
        }
        self.network: SiloNetwork | None = None
        if args.networked:
            if args.address_space is None:
                raise ValueError("a networked orchestrator needs an address space")
            endpoints: list[PrivateEndpointSpec] = []
            if args.storage_private:
                zone_of = {zone.split(".")[1]: zone for zone in args.private_dns_zones}
                endpoints = [
                    PrivateEndpointSpec("ws", self.workspace_storage.id, "blob", zone_of["blob"]),
                    PrivateEndpointSpec("models", self.models_storage.id, "blob", zone_of["blob"]),
                ]
                if "file" in zone_of:  # the workspace also keeps a file share in its storage
                    endpoints.append(
                        PrivateEndpointSpec(
                            "ws", self.workspace_storage.id, "file", zone_of["file"]
                        )
                    )
            self.network = SiloNetwork(
                f"{name}-hub",
                SiloNetworkArgs(
                    base_name=base,
                    label="hub",
                    resource_group_name=rg,
                    location=args.location,
                    address_space=args.address_space,
                    tags=tags,
                    dns_zones=self.dns_zones,
                    dns_resource_group_name=rg,
                    private_endpoints=endpoints,
                ),
                opts=child,
            )

        # The permissions table scopes the orchestrator owns.
        self.scopes: dict[str, pulumi.Input[str]] = {
            "orchestrator-resource-group": self.resource_group.id,
            "orchestrator-storage": self.workspace_storage.id,
            "models-storage": self.models_storage.id,
            "key-vault": self.key_vault.id,
            "container-registry": self.registry.id,
            "app-insights": self.app_insights.id,
        }
        for container in containers:
            self.scopes[f"models-container:{container}"] = container_scope(
                self.models_storage, container
            )

        # The workspace's primary identity must hold its roles before the workspace exists.
        workspace_roles = assign(
            args.workspace_grants,
            principals={ORCHESTRATOR_IDENTITY: self.identity.principal_id},
            scopes=self.scopes,
            subscription_id=args.subscription_id,
            parent=self,
        )
        self.workspace = machinelearningservices.Workspace(
            f"{name}-workspace",
            workspace_name=suffix.apply(lambda s: naming.workspace(base, s)),
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
            public_network_access="Enabled",
            sku={"name": "Basic", "tier": "Basic"},
            v1_legacy_mode=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(workspace_roles)),
        )
        self.scopes["workspace"] = self.workspace.id

        self.compute = aml_cluster(
            f"{name}-compute",
            compute_name=naming.ORCHESTRATOR_COMPUTE,
            location=args.location,
            vm_size=args.compute_sku,
            max_nodes=args.max_nodes,
            identity_id=self.identity.id,
            workspace=self.workspace,
            resource_group_name=rg,
            subnet_id=self.network.compute_subnet.id if self.network else None,
            node_public_ip=args.node_public_ip,
            tags=tags,
            parent=self,
        )
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

        self.register_outputs(
            {
                "resource_group": rg,
                "workspace": self.workspace.name,
                "compute": self.compute.name,
                "identity_client_id": self.identity.client_id,
            }
        )
