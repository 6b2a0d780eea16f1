"""One silo: its own resource group, identity, data storage, compute and datastore.

Everything a silo owns lives in its region and resource group, carries the silo's tags, and is
reachable only by the silo's user-assigned identity (granted in the permissions table). The
compute and the datastore are registered in the orchestrator's workspace, which is how the
federation schedules silo jobs without ever holding the silo's data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import machinelearningservices, managedidentity, resources

from components import naming
from components.access_targets import Target
from components.aml import aml_cluster, identity_datastore
from components.conventions import PURPOSE_SILO_DATA
from components.dns import ZoneWrites
from components.posture import NetworkPosture
from components.silo_network import (
    HubRef,
    Outbound,
    PrivateEndpointSpec,
    SiloNetwork,
    SiloNetworkArgs,
)
from components.storage import PRIVATE, PUBLIC, private_container, secure_storage_account
from components.tags import silo_tags, with_purpose

DATA_CONTAINER = "data"


def silo_datastore(silo: str) -> str:
    """Datastore name of a silo's data container."""
    return naming.datastore("silo", silo)


@dataclass(frozen=True)
class SiloArgs:
    base_name: str
    suffix: pulumi.Input[str]
    silo: str
    location: str
    compute_sku: str
    max_nodes: int
    tags: Mapping[str, str]
    workspace: machinelearningservices.Workspace
    workspace_resource_group: pulumi.Input[str]
    workspace_location: str
    posture: NetworkPosture
    zone_writes: ZoneWrites
    address_space: str | None = None
    outbound: Outbound = "default"
    hub: HubRef | None = None
    hub_after: Sequence[pulumi.Resource] = ()
    """Hub VNet changes this silo's peering must wait for (see ``SiloNetworkArgs``)."""
    compute_prerequisites: Sequence[pulumi.Resource] = ()
    """What Azure needs before the compute (the workspace's private endpoint)."""


class Silo(pulumi.ComponentResource):
    """A silo of the federation (an Azure-hosted one: "internal" in the manifest)."""

    def __init__(self, name: str, args: SiloArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("fl-sandbox:infra:Silo", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        base, silo = args.base_name, args.silo
        tags = silo_tags(args.tags, silo)
        suffix = pulumi.Output.from_input(args.suffix)

        self.resource_group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=suffix.apply(lambda s: naming.resource_group(base, silo, s)),
            location=args.location,
            tags=tags,
            opts=child,
        )
        rg = self.resource_group.name
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=naming.identity(base, silo),
            resource_group_name=rg,
            location=args.location,
            tags=tags,
            opts=child,
        )
        self.storage = secure_storage_account(
            f"{name}-storage",
            account_name=suffix.apply(lambda s: naming.storage_account(base, silo, s)),
            resource_group_name=rg,
            location=args.location,
            network=PRIVATE if args.posture.storage_private else PUBLIC,
            tags=with_purpose(tags, PURPOSE_SILO_DATA),
            parent=self,
        )
        container = private_container(
            f"{name}-data",
            container_name=DATA_CONTAINER,
            account=self.storage,
            resource_group_name=rg,
            parent=self,
        )

        self.network: SiloNetwork | None = None
        if args.posture.networked:
            if args.address_space is None:
                raise ValueError(f"silo {silo}: a networked silo needs an address space")
            self.network = SiloNetwork(
                f"{name}-network",
                SiloNetworkArgs(
                    base_name=base,
                    label=silo,
                    resource_group_name=rg,
                    location=args.location,
                    address_space=args.address_space,
                    tags=tags,
                    zone_writes=args.zone_writes,
                    outbound=args.outbound,
                    hub=args.hub,
                    hub_after=args.hub_after,
                ),
                opts=child,
            )
            if args.posture.storage_private:
                self.network.private_endpoint(PrivateEndpointSpec(silo, self.storage.id, "blob"))

        self.compute = aml_cluster(
            f"{name}-compute",
            compute_name=naming.compute(silo),
            workspace_location=args.workspace_location,
            location=args.location,
            vm_size=args.compute_sku,
            max_nodes=args.max_nodes,
            identity_id=self.identity.id,
            workspace=args.workspace,
            resource_group_name=args.workspace_resource_group,
            subnet_id=self.network.compute_subnet.id if self.network else None,
            node_public_ip=args.posture.node_public_ip,
            tags=tags,
            parent=self,
            depends_on=args.compute_prerequisites,
        )
        self.datastore = identity_datastore(
            f"{name}-datastore",
            datastore_name=silo_datastore(silo),
            account_name=self.storage.name,
            container_name=container.name,
            workspace=args.workspace,
            resource_group_name=args.workspace_resource_group,
            tags=with_purpose(tags, PURPOSE_SILO_DATA),
            parent=self,
        )
        self.scopes: dict[Target, pulumi.Input[str]] = {
            Target("silo-storage", silo=silo): self.storage.id,
            Target("silo-resource-group", silo=silo): self.resource_group.id,
        }
        self.register_outputs(
            {
                "resource_group": rg,
                "storage_account": self.storage.name,
                "compute": self.compute.name,
                "datastore": self.datastore.name,
                "identity_client_id": self.identity.client_id,
            }
        )
