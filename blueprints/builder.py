"""The one builder: walks a validated spec and its blueprint's data, declares every resource.

Order matters only where Azure needs it: the orchestrator (workspace, hub VNet, DNS zones)
first, then each silo (which registers its compute and datastore in the workspace and peers
with the hub), then the permissions table's remaining role assignments. Returns the stack
outputs, all non-secret, including the ``federation`` manifest the FL jobs consume.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_random
from pulumi_azure_native import authorization

from blueprints.catalog import Blueprint, blueprint
from blueprints.deployer import deployer_principal
from blueprints.spec import DEPLOYER, SandboxSpec
from blueprints.uploaders import (
    GLOBAL,
    test_path_condition,
    upload_route,
    uploader_ip_ranges,
    uploader_network,
)
from components.data_uploaders import uploader_grants
from components.jump_host import JumpHost, JumpHostArgs, JumpHostUser
from components.orchestrator import (
    MODELS_DATASTORE,
    Orchestrator,
    OrchestratorArgs,
    updates_datastore,
)
from components.permissions import (
    DEPLOYER as DEPLOYER_GRANTEE,
)
from components.permissions import (
    IMAGE_BUILDER_IDENTITY,
    JOBS_IDENTITY,
    WORKSPACE_IDENTITY,
    AccessControl,
    AccessControlArgs,
    Grant,
    Grantee,
    access_table,
    person,
    person_grant,
    silo_identity,
    submitter_grants,
)
from components.silo_network import HubRef
from components.silos.base import SiloArgs, SiloComponent, silo_datastore
from components.vocabulary import naming
from components.vocabulary.access_targets import Target, parse_target
from components.vocabulary.conventions import GLOBAL_MODELS_CONTAINER
from fl_jobs.run.manifest import FederationManifest

SUFFIX_RESOURCE = "name-suffix"


def submitter_grantee(principal_id: str) -> Grantee:
    """The grantee of a submitter entry (``deployer`` is whoever runs ``pulumi up``)."""
    return DEPLOYER_GRANTEE if principal_id.lower() == DEPLOYER else person(principal_id)


def sandbox_access_table(spec: SandboxSpec) -> list[Grant]:
    """The full permissions table of a spec: built-in rows, submitters, stack-file extras."""
    submitters = [
        grant
        for s in spec.submitters
        for grant in submitter_grants(submitter_grantee(s.principal_id), s.principal_type)
    ]
    extras = [
        person_grant(
            e.principal_id,
            e.principal_type,
            e.role,
            parse_target(e.target, spec.silo_names),
            e.why,
            e.member_of,
        )
        for e in spec.extra_role_assignments
    ]
    extras += [
        grant
        for target, uploaders in spec.data_uploaders.items()
        for u in uploaders
        for grant in uploader_grants(
            target,
            u.principal_id,
            u.principal_type,
            global_key=GLOBAL,
            test_condition=test_path_condition(),
        )
    ]
    attached: list[tuple[str | None, bool]] = [
        (s.name, s.silo_kind.on_premises) for s in spec.silos if s.silo_kind.kubernetes
    ]
    if spec.aggregation_pool is not None:
        attached.append((None, False))
    hbi_aks = spec.posture.workspace_private and bool(spec.aks_clusters)
    return access_table(
        spec.silo_names,
        extras,
        submitters,
        spec.aks_clusters,
        attached,
        hbi_aks=hbi_aks,
        image_builder=spec.posture.image_build_compute,
    )


def build_sandbox(spec: SandboxSpec) -> dict[str, Any]:
    """Declare the sandbox described by ``spec``; return the outputs to export."""
    bp: Blueprint = blueprint(spec.blueprint)
    client = authorization.get_client_config_output()
    suffix = pulumi_random.RandomString(
        SUFFIX_RESOURCE,
        length=naming.SUFFIX_LENGTH,
        special=False,
        upper=False,
        numeric=True,
    ).result
    table = sandbox_access_table(spec)

    posture = bp.posture
    hub_prefixes = (spec.orchestrator_address_space,) + (
        (spec.jump_host.address_space,) if spec.jump_host is not None else ()
    )
    orchestrator = Orchestrator(
        "orchestrator",
        OrchestratorArgs(
            base_name=spec.base_name,
            suffix=suffix,
            location=spec.region,
            silos=spec.silo_names,
            compute_sku=spec.orchestrator_compute_sku,
            max_nodes=spec.orchestrator_max_nodes,
            tags=spec.tags,
            subscription_id=client.subscription_id,
            tenant_id=client.tenant_id,
            workspace_grants=[g for g in table if g.before_workspace],
            posture=posture,
            address_space=spec.orchestrator_address_space,
            extra_hub_prefixes=hub_prefixes[1:],
            outbound=spec.compute_outbound,
            submitter_ip_ranges=spec.submitter_ip_ranges,
            aggregation_pool=spec.aggregation_pool,
            cluster_grants=[g for g in table if g.before_cluster and g.grantee.silo is None],
            uploader_ip_ranges=uploader_ip_ranges(spec, GLOBAL),
            attach_grants=[g for g in table if g.before_attach and g.target.silo is None],
        ),
    )
    hub = (
        HubRef(
            vnet_id=orchestrator.network.vnet.id,
            vnet_name=orchestrator.network.vnet.name,
            resource_group_name=orchestrator.resource_group.name,
            address_prefixes=hub_prefixes,
        )
        if orchestrator.network is not None
        else None
    )
    # Azure refuses concurrent changes to one VNet: hub-side peerings go one after another.
    hub_after: list[pulumi.Resource] = (
        [orchestrator.network.last_change] if orchestrator.network is not None else []
    )
    silos: list[SiloComponent] = []
    for s in spec.silos:
        silo = s.silo_kind.component(
            f"silo-{s.name}",
            SiloArgs(
                base_name=spec.base_name,
                suffix=suffix,
                spec=s,
                tags=spec.tags,
                workspace=orchestrator.workspace,
                workspace_resource_group=orchestrator.resource_group.name,
                workspace_location=spec.region,
                posture=posture,
                zone_writes=orchestrator.zone_writes,
                subscription_id=client.subscription_id,
                tenant_id=client.tenant_id,
                outbound=spec.compute_outbound,
                hub=hub,
                hub_after=tuple(hub_after),
                compute_prerequisites=tuple(orchestrator.compute_prerequisites),
                grants=[g for g in table if g.before_cluster and g.grantee.silo == s.name],
                uploader_ip_ranges=uploader_ip_ranges(spec, s.name),
                attach_grants=[g for g in table if g.before_attach and g.target.silo == s.name],
                workspace_principal=orchestrator.identity.principal_id,
                endpoint_sources=upload_route(spec, s.name),
            ),
        )
        if silo.network is not None and silo.network.hub_peering is not None:
            hub_after = [silo.network.hub_peering]
        silos.append(silo)
    if spec.jump_host is not None and orchestrator.network is not None:
        _jump_host(spec, orchestrator, client, hub_after)

    principals: dict[Grantee, pulumi.Input[str]] = {
        WORKSPACE_IDENTITY: orchestrator.identity.principal_id,
        JOBS_IDENTITY: orchestrator.jobs_identity.principal_id,
        DEPLOYER_GRANTEE: deployer_principal(spec, client.object_id),
    }
    if orchestrator.image_builder_identity is not None:
        principals[IMAGE_BUILDER_IDENTITY] = orchestrator.image_builder_identity.principal_id
    scopes: dict[Target, pulumi.Input[str]] = dict(orchestrator.scopes)
    for s, silo in zip(spec.silos, silos, strict=True):
        principals[silo_identity(s.name)] = silo.identity.principal_id
        scopes.update(silo.scopes)
    AccessControl(
        "access",
        AccessControlArgs(
            grants=[
                g for g in table if not (g.before_workspace or g.before_cluster or g.before_attach)
            ],
            principals=principals,
            scopes=scopes,
            subscription_id=client.subscription_id,
        ),
    )

    return _outputs(spec, bp, table, orchestrator, silos, client)


def _jump_host(
    spec: SandboxSpec, orchestrator: Orchestrator, client: Any, after: list[pulumi.Resource]
) -> JumpHost:
    """The hub's jump host and Bastion, after every other change to the hub VNet; Reader on
    it for every submitter and data uploader (each principal once)."""
    assert spec.jump_host is not None and orchestrator.network is not None
    users: dict[str, JumpHostUser] = {}
    people = [(s.principal_id, s.principal_type) for s in spec.submitters]
    people += [
        (u.principal_id, u.principal_type) for us in spec.data_uploaders.values() for u in us
    ]
    for principal, kind in people:
        key = principal.lower()
        if key not in users:
            pid = deployer_principal(spec, client.object_id) if key == DEPLOYER else principal
            users[key] = JumpHostUser(key=key, principal_id=pid, principal_type=kind)
    jump = spec.jump_host
    return JumpHost(
        "jump-host",
        JumpHostArgs(
            base_name=spec.base_name,
            resource_group_name=orchestrator.resource_group.name,
            location=spec.region,
            vnet_name=orchestrator.network.vnet.name,
            bastion_subnet=jump.bastion_subnet,
            host_subnet=jump.host_subnet,
            vm_size=jump.vm_size,
            admin_username=jump.admin_username,
            ssh_public_key=jump.ssh_public_key,
            users=list(users.values()),
            subscription_id=client.subscription_id,
            tags=spec.tags,
            after=tuple(after),
            nat_gateway_id=orchestrator.network.nat_gateway_id,
        ),
    )


def blob_endpoint(account: str) -> str:
    """The model store's blob endpoint for the agents, in Azure's public cloud (the sandbox's
    only cloud: https://learn.microsoft.com/azure/storage/common/storage-account-overview#standard-endpoints)."""
    return f"https://{account}.blob.core.windows.net"


def _outputs(
    spec: SandboxSpec,
    bp: Blueprint,
    table: list[Grant],
    orchestrator: Orchestrator,
    silos: list[SiloComponent],
    client: Any,
) -> dict[str, Any]:
    silo_refs = [silo.manifest_entry() for silo in silos]
    orchestrator_fields: dict[str, Any] = {}
    if orchestrator.aggregation_instance_type is not None:
        orchestrator_fields = {
            "compute_type": "kubernetes",
            "instance_type": orchestrator.aggregation_instance_type,
        }
    federation = pulumi.Output.all(
        subscription_id=client.subscription_id,
        resource_group=orchestrator.resource_group.name,
        workspace=orchestrator.workspace.name,
        compute=orchestrator.compute.name,
        datastore=orchestrator.models_datastore.name,
        models_account=orchestrator.models_storage.name,
        client_id=orchestrator.jobs_identity.client_id,
        silos=pulumi.Output.all(*silo_refs),
    ).apply(
        lambda v: FederationManifest.model_validate(
            {
                "blueprint": spec.blueprint,
                "workspace": {
                    "subscription_id": v["subscription_id"],
                    "resource_group": v["resource_group"],
                    "name": v["workspace"],
                    "region": spec.region,
                },
                "orchestrator": {
                    "compute": v["compute"],
                    "datastore": v["datastore"],
                    "identity_client_id": v["client_id"],
                    "model_store_url": blob_endpoint(v["models_account"]),
                    **orchestrator_fields,
                },
                "silos": list(v["silos"]),
            }
        ).model_dump(mode="json")
    )
    outputs: dict[str, Any] = {
        "federation": federation,
        "blueprint": bp.name,
        # The checks read the posture from here (policies needs nothing from blueprints).
        "posture": bp.posture.to_output(),
        "workspace_name": orchestrator.workspace.name,
        "orchestrator_resource_group": orchestrator.resource_group.name,
        "silo_resource_groups": {
            s.name: silo.resource_group.name for s, silo in zip(spec.silos, silos, strict=True)
        },
        "storage_accounts": {
            "workspace": orchestrator.workspace_storage.name,
            "models": orchestrator.models_storage.name,
            **{f"silo:{silo.silo}": silo.storage_account_name for silo in silos},
        },
        "model_store": {
            "account": orchestrator.models_storage.name,
            "global_datastore": MODELS_DATASTORE,
            "update_datastores": {s: updates_datastore(s) for s in spec.silo_names},
            "update_containers": {s: naming.silo_container(s) for s in spec.silo_names},
        },
        "silo_datastores": {s: silo_datastore(s) for s in spec.silo_names},
        "access_table": [grant.row() for grant in table],
        "submitters": [
            {
                "principal_id": (
                    deployer_principal(spec, client.object_id)
                    if s.principal_id.lower() == DEPLOYER
                    else s.principal_id
                ),
                "principal_type": s.principal_type,
                "deployer": s.principal_id.lower() == DEPLOYER,
                "ip_ranges": list(s.ip_ranges),
                "network": bp.posture.submitter_network,
            }
            for s in spec.submitters
        ],
        "data_uploaders": [
            {
                "principal_id": u.principal_id,
                "principal_type": u.principal_type,
                "target": target,
                "ip_ranges": list(u.ip_ranges),
                "network": uploader_network(spec, target, u),
            }
            for target, uploaders in spec.data_uploaders.items()
            for u in uploaders
        ],
        "datastores": {
            MODELS_DATASTORE: {
                "account": orchestrator.models_storage.name,
                "container": GLOBAL_MODELS_CONTAINER,
            },
            **{
                updates_datastore(s): {
                    "account": orchestrator.models_storage.name,
                    "container": naming.silo_container(s),
                }
                for s in spec.silo_names
            },
            **{
                silo_datastore(s.name): {
                    "account": silo.storage_account_name,
                    "container": silo.storage_container,
                }
                for s, silo in zip(spec.silos, silos, strict=True)
            },
        },
        "image_build_compute": naming.IMAGE_BUILD_COMPUTE if bp.posture.image_build_compute else "",
        "on_premises": {s.name: s.on_premises_output() for s in spec.on_premises_silos},
        "existing_storage": {
            s.name: s.storage.account_id for s in spec.silos if s.storage is not None
        },
    }
    if bp.posture.networked:
        outputs["network"] = {
            "orchestrator": spec.orchestrator_address_space,
            "silos": {s.name: s.network_range for s in spec.silos if s.network_range},
            "private_dns_zones": list(bp.posture.private_dns_zones),
            "compute_outbound": spec.compute_outbound,
        }
        if spec.jump_host is not None:
            outputs["network"]["jump_host"] = spec.jump_host.address_space
    return outputs
