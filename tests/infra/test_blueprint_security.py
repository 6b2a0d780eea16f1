"""Security posture per blueprint: storage, computes, datastores, workspace, network layout."""

from __future__ import annotations

import ipaddress

import pytest

from blueprints.catalog import BLUEPRINTS
from blueprints.mock_runtime import MockRun, RecordedResource
from components.conventions import TAG_SILO
from tests.infra.helpers import BLUEPRINT_NAMES, blueprint_run, blueprint_spec, owner_component

AZ = "azure-native"
CASES = [(bp, n) for bp in BLUEPRINT_NAMES for n in (1, 3)]


@pytest.fixture(params=CASES, ids=[f"{bp}-{n}" for bp, n in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, int, MockRun]:
    bp, n = request.param
    return bp, n, blueprint_run(bp, n)


def _silo_of(run: MockRun, resource: RecordedResource) -> str | None:
    owner = owner_component(run, resource)
    assert owner is not None
    return owner.name.removeprefix("silo-") if owner.type == "fl-sandbox:infra:Silo" else None


def test_every_storage_account_is_locked_down(case: tuple[str, int, MockRun]) -> None:
    bp, _, run = case
    private = BLUEPRINTS[bp].storage_private
    for account in run.of_type(f"{AZ}:storage:StorageAccount"):
        i = account.inputs
        assert i["allowSharedKeyAccess"] is False
        assert i["allowBlobPublicAccess"] is False
        assert i["minimumTlsVersion"] == "TLS1_2"
        assert i["enableHttpsTrafficOnly"] is True
        assert i["publicNetworkAccess"] == ("Disabled" if private else "Enabled")
        assert i["networkRuleSet"]["defaultAction"] == ("Deny" if private else "Allow")
    for container in run.of_type(f"{AZ}:storage:BlobContainer"):
        assert container.inputs["publicAccess"] == "None"


def test_private_storage_has_blob_private_endpoints(case: tuple[str, int, MockRun]) -> None:
    bp, _, run = case
    endpoints = run.of_type(f"{AZ}:network:PrivateEndpoint")
    if not BLUEPRINTS[bp].storage_private:
        assert endpoints == []
        return
    targets = {
        (c["privateLinkServiceId"], g)
        for pe in endpoints
        for c in pe.inputs["privateLinkServiceConnections"]
        for g in c["groupIds"]
    }
    for account in run.of_type(f"{AZ}:storage:StorageAccount"):
        assert (account.outputs["id"], "blob") in targets, account.inputs["accountName"]
    # Each endpoint registers in the private DNS zone of its sub-resource.
    zones = {
        z.outputs["id"]: z.inputs["privateZoneName"]
        for z in run.of_type(f"{AZ}:privatedns:PrivateZone")
    }
    groups = run.of_type(f"{AZ}:network:PrivateDnsZoneGroup")
    assert len(groups) == len(endpoints)
    for group in groups:
        (config,) = group.inputs["privateDnsZoneConfigs"]
        assert zones[config["privateDnsZoneId"]].startswith("privatelink.")


def test_silo_endpoints_live_in_their_own_silo_network(case: tuple[str, int, MockRun]) -> None:
    _, _, run = case
    subnets = {s.outputs["id"]: s for s in run.of_type(f"{AZ}:network:Subnet")}
    accounts = {a.outputs["id"]: a for a in run.of_type(f"{AZ}:storage:StorageAccount")}
    for pe in run.of_type(f"{AZ}:network:PrivateEndpoint"):
        subnet = subnets[pe.inputs["subnet"]["id"]]
        assert subnet.inputs["subnetName"] == "endpoints"
        (connection,) = pe.inputs["privateLinkServiceConnections"]
        account = accounts[connection["privateLinkServiceId"]]
        assert _silo_of(run, subnet) == account.inputs["tags"].get(TAG_SILO)


def test_private_dns_zones_are_linked_to_every_vnet(case: tuple[str, int, MockRun]) -> None:
    bp, _, run = case
    vnets = {v.outputs["id"] for v in run.of_type(f"{AZ}:network:VirtualNetwork")}
    zones = [z.inputs["privateZoneName"] for z in run.of_type(f"{AZ}:privatedns:PrivateZone")]
    assert sorted(zones) == sorted(BLUEPRINTS[bp].private_dns_zones)
    links = run.of_type(f"{AZ}:privatedns:VirtualNetworkLink")
    for zone in zones:
        linked = {
            link.inputs["virtualNetwork"]["id"]
            for link in links
            if link.inputs["privateZoneName"] == zone
        }
        assert linked == vnets
    assert all(link.inputs["registrationEnabled"] is False for link in links)


def test_computes_scale_to_zero_as_their_identity_in_their_region_and_subnet(
    case: tuple[str, int, MockRun],
) -> None:
    bp, n, run = case
    spec, blueprint = blueprint_spec(bp, n), BLUEPRINTS[bp]
    identities = {
        i.outputs["id"]: i for i in run.of_type(f"{AZ}:managedidentity:UserAssignedIdentity")
    }
    subnets = {s.outputs["id"]: s for s in run.of_type(f"{AZ}:network:Subnet")}
    computes = run.of_type(f"{AZ}:machinelearningservices:Compute")
    assert len(computes) == n + 1
    for compute in computes:
        props = compute.inputs["properties"]
        cluster = props["properties"]
        silo = _silo_of(run, compute)
        assert props["computeType"] == "AmlCompute"
        assert props["disableLocalAuth"] is True
        assert cluster["scaleSettings"]["minNodeCount"] == 0
        assert cluster["enableNodePublicIp"] is blueprint.node_public_ip
        assert cluster["remoteLoginPortPublicAccess"] == "Disabled"
        identity = compute.inputs["identity"]
        assert identity["type"] == "UserAssigned"
        (identity_id,) = identity["userAssignedIdentities"]
        assert identities[identity_id].inputs["tags"].get(TAG_SILO) == silo
        region = spec.silo(silo).region if silo else spec.region
        assert compute.inputs["location"] == region
        if silo:
            assert cluster["scaleSettings"]["maxNodeCount"] == spec.silo(silo).max_nodes
        if blueprint.networked:
            subnet = subnets[cluster["subnet"]["id"]]
            assert subnet.inputs["subnetName"] == "compute"
            assert _silo_of(run, subnet) == silo
        else:
            assert "subnet" not in cluster


def test_datastores_hold_no_credentials(case: tuple[str, int, MockRun]) -> None:
    _, n, run = case
    datastores = run.of_type(f"{AZ}:machinelearningservices:Datastore")
    assert len(datastores) == 1 + 2 * n
    for datastore in datastores:
        props = datastore.inputs["properties"]
        assert props["datastoreType"] == "AzureBlob"
        assert props["credentials"] == {"credentialsType": "None"}
        assert props["serviceDataAccessAuthIdentity"] == "None"


def test_workspace_identity_vault_and_registry(case: tuple[str, int, MockRun]) -> None:
    _, _, run = case
    (workspace,) = run.of_type(f"{AZ}:machinelearningservices:Workspace")
    (orchestrator_identity,) = [
        i
        for i in run.of_type(f"{AZ}:managedidentity:UserAssignedIdentity")
        if TAG_SILO not in i.inputs["tags"]
    ]
    identity = workspace.inputs["identity"]
    assert identity["type"] == "SystemAssigned,UserAssigned"
    assert identity["userAssignedIdentities"] == [orchestrator_identity.outputs["id"]]
    assert workspace.inputs["primaryUserAssignedIdentity"] == orchestrator_identity.outputs["id"]
    assert workspace.inputs["systemDatastoresAuthMode"] == "Identity"
    (vault,) = run.of_type(f"{AZ}:keyvault:Vault")
    props = vault.inputs["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True
    assert props["enableSoftDelete"] is True
    (registry,) = run.of_type(f"{AZ}:containerregistry:Registry")
    assert registry.inputs["adminUserEnabled"] is False


def test_network_layout(case: tuple[str, int, MockRun]) -> None:
    bp, n, run = case
    spec, blueprint = blueprint_spec(bp, n), BLUEPRINTS[bp]
    vnets = run.of_type(f"{AZ}:network:VirtualNetwork")
    if not blueprint.networked:
        assert not [r for r in run.resources if ":network:" in r.type]
        return
    ranges = {_silo_of(run, v): v.inputs["addressSpace"]["addressPrefixes"][0] for v in vnets}
    assert ranges == {
        None: spec.orchestrator_address_space,
        **{s.name: s.address_space for s in spec.silos},
    }
    nets = [ipaddress.ip_network(r) for r in ranges.values()]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])

    # Silos peer with the hub both ways, never with each other.
    hub_id = next(v.outputs["id"] for v in vnets if _silo_of(run, v) is None)
    vnet_by_name = {
        (v.inputs["resourceGroupName"], v.inputs["virtualNetworkName"]): v for v in vnets
    }
    pairs = set()
    for peering in run.of_type(f"{AZ}:network:VirtualNetworkPeering"):
        local = vnet_by_name[
            (peering.inputs["resourceGroupName"], peering.inputs["virtualNetworkName"])
        ].outputs["id"]
        remote = peering.inputs["remoteVirtualNetwork"]["id"]
        assert hub_id in (local, remote)
        assert peering.inputs["allowForwardedTraffic"] is False
        pairs.add((local, remote))
    silo_vnets = {v.outputs["id"] for v in vnets} - {hub_id}
    assert pairs == {(s, hub_id) for s in silo_vnets} | {(hub_id, s) for s in silo_vnets}

    # Each VNet: a compute subnet behind the AML NSG and an endpoints subnet, splitting it.
    nsgs = {g.outputs["id"]: g for g in run.of_type(f"{AZ}:network:NetworkSecurityGroup")}
    for subnet in run.of_type(f"{AZ}:network:Subnet"):
        if subnet.inputs["subnetName"] == "compute":
            rules = nsgs[subnet.inputs["networkSecurityGroup"]["id"]].inputs["securityRules"]
            sources = {r["sourceAddressPrefix"] for r in rules if r["access"] == "Allow"}
            assert sources == {"BatchNodeManagement", "AzureMachineLearning"}
            assert all(r["direction"] == "Inbound" for r in rules)
        else:
            assert subnet.inputs["privateEndpointNetworkPolicies"] == "Disabled"
        assert ipaddress.ip_network(subnet.inputs["addressPrefix"]).subnet_of(
            ipaddress.ip_network(ranges[_silo_of(run, subnet)])
        )
