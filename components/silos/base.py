"""What every silo kind shares, and the small interface the builder and the checks use.

Every silo has its own resource group, user-assigned identity, data storage (new, or an
existing account read from Azure) and identity-based datastore, registered in the
orchestrator's workspace; silos that run in Azure also get their VNet. A kind adds its compute
(``_compute``) and its manifest fields. The builder sees only ``SiloComponent``: its identity
(the principal the permissions table grants), its data scopes, its compute and its manifest
entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
from pulumi_azure_native import machinelearningservices, managedidentity, resources, storage

from components.aml import identity_datastore
from components.dns import ZoneWrites
from components.permissions import Grant, Grantee, assign, silo_identity
from components.silo_network import (
    HubRef,
    Outbound,
    PrivateEndpointSpec,
    SiloNetwork,
    SiloNetworkArgs,
)
from components.storage import (
    PRIVATE,
    PUBLIC,
    StorageNetwork,
    private_container,
    secure_storage_account,
    uploaders_network,
)
from components.vocabulary import naming
from components.vocabulary.access_targets import Target
from components.vocabulary.conventions import PURPOSE_SILO_DATA
from components.vocabulary.posture import NetworkPosture
from components.vocabulary.tags import silo_tags, with_purpose

DATA_CONTAINER = "data"


def silo_datastore(silo: str) -> str:
    """Datastore name of a silo's data container."""
    return naming.datastore("silo", silo)


@dataclass(frozen=True)
class SiloArgs:
    base_name: str
    suffix: pulumi.Input[str]
    spec: Any
    """The silo's spec model (``blueprints.silo_kinds``): its kind's settings."""
    tags: Mapping[str, str]
    workspace: machinelearningservices.Workspace
    workspace_resource_group: pulumi.Input[str]
    workspace_location: str
    posture: NetworkPosture
    zone_writes: ZoneWrites
    subscription_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    outbound: Outbound = "default"
    hub: HubRef | None = None
    hub_after: Sequence[pulumi.Resource] = ()
    """Hub VNet changes this silo's peering must wait for (see ``SiloNetworkArgs``)."""
    compute_prerequisites: Sequence[pulumi.Resource] = ()
    """What Azure needs before the compute (the workspace's private endpoint)."""
    grants: Sequence[Grant] = ()
    """Permissions-table rows this silo's resources need before they are created (an AKS
    control plane's role on its subnet)."""
    uploader_ip_ranges: Sequence[str] = ()
    """Addresses of this silo's data uploaders its storage admits (``dataUploaders``)."""
    attach_grants: Sequence[Grant] = ()
    """Rows the workspace's identity needs on this silo's cluster before the attach."""
    workspace_principal: pulumi.Input[str] | None = None
    """The workspace's user-assigned identity, which Azure ML attaches clusters as."""
    endpoint_sources: Sequence[str] = ()
    """Ranges outside the silo's VNet its private endpoints admit: its uploaders' route."""


class SiloComponent(pulumi.ComponentResource):
    """A silo of any kind: identity, storage, datastore, (VNet), and a compute from the kind."""

    manifest_kind: ClassVar[str] = "internal"
    """``internal`` (runs in Azure) or ``external`` (the site's own cluster), in the manifest."""
    in_vnet: ClassVar[bool] = True

    identity: managedidentity.UserAssignedIdentity
    compute: machinelearningservices.Compute
    datastore: machinelearningservices.Datastore
    network: SiloNetwork | None
    scopes: dict[Target, pulumi.Input[str]]

    def __init__(self, name: str, args: SiloArgs, opts: pulumi.ResourceOptions | None = None):
        # One type for every kind: the URNs of existing silos stay as they were.
        super().__init__("fl-sandbox:infra:Silo", name, None, opts)
        self.name = name
        self.args = args
        self.silo = silo = args.spec.name
        base = args.base_name
        self.tags = tags = silo_tags(args.tags, silo)
        suffix = pulumi.Output.from_input(args.suffix)
        child = pulumi.ResourceOptions(parent=self)

        self.resource_group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=suffix.apply(lambda s: naming.resource_group(base, silo, s)),
            location=args.spec.region,
            tags=tags,
            opts=child,
        )
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=naming.identity(base, silo),
            resource_group_name=self.resource_group.name,
            location=args.spec.region,
            tags=tags,
            opts=child,
        )
        self.network = self._network() if self.in_vnet and args.posture.networked else None
        self._storage(suffix)
        self.datastore = identity_datastore(
            f"{name}-datastore",
            datastore_name=silo_datastore(silo),
            account_name=self.storage_account_name,
            container_name=self.storage_container,
            workspace=args.workspace,
            resource_group_name=args.workspace_resource_group,
            tags=with_purpose(tags, PURPOSE_SILO_DATA),
            parent=self,
        )
        self.scopes = {
            Target("silo-storage", silo=silo): self.storage_id,
            Target("silo-resource-group", silo=silo): self.resource_group.id,
            Target("silo-data-container", silo=silo): pulumi.Output.concat(
                self.storage_id, "/blobServices/default/containers/", self.storage_container
            ),
        }
        if self.network is not None:
            self.scopes[Target("compute-subnet", silo=silo)] = self.network.compute_subnet.id
        self.compute = self._compute()
        self.register_outputs(
            {
                "resource_group": self.resource_group.name,
                "storage_account": self.storage_account_name,
                "compute": self.compute.name,
                "datastore": self.datastore.name,
                "identity_client_id": self.identity.client_id,
            }
        )

    # ----- shared pieces ---------------------------------------------------------------------
    def _network(self) -> SiloNetwork:
        args, spec = self.args, self.args.spec
        if spec.address_space is None:
            raise ValueError(f"silo {self.silo}: a networked silo needs an address space")
        return SiloNetwork(
            f"{self.name}-network",
            SiloNetworkArgs(
                base_name=args.base_name,
                label=self.silo,
                resource_group_name=self.resource_group.name,
                location=spec.region,
                address_space=spec.address_space,
                tags=self.tags,
                zone_writes=args.zone_writes,
                outbound=args.outbound,
                hub=args.hub,
                hub_after=args.hub_after,
                endpoint_sources=args.endpoint_sources,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def storage_network(self) -> StorageNetwork:
        """How the network reaches this silo's storage (a kind may narrow it)."""
        if self.args.posture.storage_private and self.args.uploader_ip_ranges:
            return uploaders_network(self.args.uploader_ip_ranges)
        return PRIVATE if self.args.posture.storage_private else PUBLIC

    def _storage(self, suffix: pulumi.Output[str]) -> None:
        args, silo, base = self.args, self.silo, self.args.base_name
        existing = args.spec.storage
        if existing is not None:
            # Not managed here: read so the checks (and CrossGuard) see its real settings.
            self.storage: storage.StorageAccount = storage.StorageAccount.get(
                f"{self.name}-storage",
                existing.account_id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.storage_id: pulumi.Input[str] = existing.account_id
            self.storage_account_name: pulumi.Input[str] = existing.account_name
            self.storage_container: pulumi.Input[str] = existing.container
        else:
            self.storage = secure_storage_account(
                f"{self.name}-storage",
                account_name=suffix.apply(lambda s: naming.storage_account(base, silo, s)),
                resource_group_name=self.resource_group.name,
                location=args.spec.region,
                network=self.storage_network(),
                tags=with_purpose(self.tags, PURPOSE_SILO_DATA),
                parent=self,
            )
            container = private_container(
                f"{self.name}-data",
                container_name=DATA_CONTAINER,
                account=self.storage,
                resource_group_name=self.resource_group.name,
                parent=self,
            )
            self.storage_id = self.storage.id
            self.storage_account_name = self.storage.name
            self.storage_container = container.name
        if self.network is not None and args.posture.storage_private:
            # An existing account too: the silo's compute reaches it through its own endpoint
            # (approved automatically where the deployer may approve it, else pending).
            self.network.private_endpoint(PrivateEndpointSpec(silo, self.storage_id, "blob"))

    def grant_before(
        self, principals: Mapping[Grantee, pulumi.Input[str]]
    ) -> list[pulumi.Resource]:
        """Create this silo's rows of the permissions table that its resources need first."""
        return list(
            assign(
                self.args.grants,
                principals=principals,
                scopes=self.scopes,
                subscription_id=self.args.subscription_id,
                parent=self,
            )
        )

    # ----- what a kind provides ---------------------------------------------------------------
    def _compute(self) -> machinelearningservices.Compute:
        raise NotImplementedError

    def manifest_fields(self) -> dict[str, Any]:
        """Kind-specific manifest fields (compute type, instance type, data mount)."""
        return {"compute_type": "amlcompute"}

    def manifest_entry(self) -> pulumi.Output[dict[str, Any]]:
        """This silo in the federation manifest."""
        from components.orchestrator import updates_datastore

        spec = self.args.spec
        fields = self.manifest_fields()
        return pulumi.Output.all(
            compute=self.compute.name,
            datastore=self.datastore.name,
            client_id=self.identity.client_id,
        ).apply(
            lambda v: {
                "name": spec.name,
                "region": spec.region,
                "kind": self.manifest_kind,
                "compute": v["compute"],
                "datastore": v["datastore"],
                "update_datastore": updates_datastore(spec.name),
                "identity_client_id": v["client_id"],
                **fields,
            }
        )

    @property
    def grantee(self) -> Grantee:
        return silo_identity(self.silo)
