"""Security posture per blueprint: storage, computes, datastores, workspace, network layout."""

from __future__ import annotations

import ipaddress

import pytest

from blueprints.catalog import BLUEPRINTS
from blueprints.mock_runtime import MockRun, RecordedResource
from blueprints.spec import EXAMPLE_SUBMITTER_RANGE
from blueprints.uploaders import upload_route
from components.kubernetes.aks import POOL_SELECTOR
from components.vocabulary.conventions import (
    PURPOSE_AKS_CONTROL_PLANE,
    PURPOSE_IMAGE_BUILD,
    PURPOSE_JOBS,
    PURPOSE_WORKSPACE,
    TAG_PURPOSE,
    TAG_SILO,
)
from components.vocabulary.posture import ZONES_BY_GROUP, NetworkPosture
from components.vocabulary.vm_sizes import vm_size
from tests.infra.helpers import (
    BLUEPRINT_NAMES,
    blueprint_run,
    blueprint_spec,
    owner_component,
    run_spec,
)

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
    posture = BLUEPRINTS[bp].posture
    for account in run.of_type(f"{AZ}:storage:StorageAccount"):
        i = account.inputs
        assert i["allowSharedKeyAccess"] is False
        assert i["allowBlobPublicAccess"] is False
        assert i["minimumTlsVersion"] == "TLS1_2"
        assert i["enableHttpsTrafficOnly"] is True
        assert i["isLocalUserEnabled"] is False and i["isSftpEnabled"] is False
        rules = i["networkRuleSet"]
        if i["tags"][TAG_PURPOSE] == PURPOSE_WORKSPACE:
            # Never Disabled: the AML service reaches it as a trusted resource instance.
            assert i["publicNetworkAccess"] == "Enabled"
            if posture.workspace_storage_access == "public":
                assert rules["defaultAction"] == "Allow"
                continue
            assert rules["defaultAction"] == "Deny" and rules["bypass"] == "AzureServices"
            (instance,) = rules["resourceAccessRules"]
            (workspace,) = run.of_type(f"{AZ}:machinelearningservices:Workspace")
            assert instance["resourceId"] == workspace.outputs["id"]
            ips = [r["iPAddressOrRange"] for r in rules["ipRules"]]
            internet = posture.submitter_network == "internet"
            assert ips == ([EXAMPLE_SUBMITTER_RANGE] if internet else [])
        elif posture.storage_private and not rules.get("ipRules"):
            assert i["publicNetworkAccess"] == "Disabled"
            assert i["allowedCopyScope"] == "PrivateLink"
            assert rules == {"defaultAction": "Deny", "bypass": "None"}
        elif posture.storage_private:
            # Only the data uploaders' addresses (eyes-off: no hub route reaches the silos).
            assert posture.submitter_network == "internet"
            assert i["publicNetworkAccess"] == "Enabled"
            assert i["allowedCopyScope"] == "PrivateLink"
            assert rules["defaultAction"] == "Deny" and rules["bypass"] == "None"
            assert [r["iPAddressOrRange"] for r in rules["ipRules"]] == [EXAMPLE_SUBMITTER_RANGE]
        else:
            assert i["publicNetworkAccess"] == "Enabled" and rules["defaultAction"] == "Allow"
    for container in run.of_type(f"{AZ}:storage:BlobContainer"):
        assert container.inputs["publicAccess"] == "None"


def _endpoint_targets(run: MockRun) -> dict[tuple[str, str], RecordedResource]:
    return {
        (c["privateLinkServiceId"], g): pe
        for pe in run.of_type(f"{AZ}:network:PrivateEndpoint")
        for c in pe.inputs["privateLinkServiceConnections"]
        for g in c["groupIds"]
    }


def test_private_resources_have_private_endpoints(case: tuple[str, int, MockRun]) -> None:
    bp, _, run = case
    posture = BLUEPRINTS[bp].posture
    targets = _endpoint_targets(run)
    expected: set[tuple[str, str]] = set()
    if posture.storage_private:
        for account in run.of_type(f"{AZ}:storage:StorageAccount"):
            expected.add((account.outputs["id"], "blob"))
            if account.inputs["tags"][TAG_PURPOSE] == PURPOSE_WORKSPACE:
                expected.add((account.outputs["id"], "file"))
    (workspace,) = run.of_type(f"{AZ}:machinelearningservices:Workspace")
    if posture.workspace_endpoint:
        expected.add((workspace.outputs["id"], "amlworkspace"))
    if posture.workspace_private:
        (vault,) = run.of_type(f"{AZ}:keyvault:Vault")
        (registry,) = run.of_type(f"{AZ}:containerregistry:Registry")
        expected |= {(vault.outputs["id"], "vault"), (registry.outputs["id"], "registry")}
    assert set(targets) == expected
    # Each endpoint registers in exactly the zones of its sub-resource.
    zones = {
        z.outputs["id"]: z.inputs["privateZoneName"]
        for z in run.of_type(f"{AZ}:privatedns:PrivateZone")
    }
    groups = {
        g.inputs["privateEndpointName"]: g for g in run.of_type(f"{AZ}:network:PrivateDnsZoneGroup")
    }
    assert len(groups) == len(targets)
    for (_, group_id), pe in targets.items():
        configs = groups[pe.inputs["privateEndpointName"]].inputs["privateDnsZoneConfigs"]
        assert [zones[c["privateDnsZoneId"]] for c in configs] == list(ZONES_BY_GROUP[group_id])


def test_silo_endpoints_live_in_their_own_silo_network(case: tuple[str, int, MockRun]) -> None:
    _, _, run = case
    subnets = {s.outputs["id"]: s for s in run.of_type(f"{AZ}:network:Subnet")}
    owners = {
        r.outputs["id"]: r.inputs.get("tags", {}).get(TAG_SILO)
        for r in run.resources
        if r.custom and "id" in r.outputs
    }
    for pe in run.of_type(f"{AZ}:network:PrivateEndpoint"):
        subnet = subnets[pe.inputs["subnet"]["id"]]
        assert subnet.inputs["subnetName"] == "endpoints"
        (connection,) = pe.inputs["privateLinkServiceConnections"]
        assert _silo_of(run, subnet) == owners[connection["privateLinkServiceId"]]


def test_private_dns_zones_are_linked_to_every_vnet(case: tuple[str, int, MockRun]) -> None:
    bp, _, run = case
    vnets = {v.outputs["id"] for v in run.of_type(f"{AZ}:network:VirtualNetwork")}
    zones = [z.inputs["privateZoneName"] for z in run.of_type(f"{AZ}:privatedns:PrivateZone")]
    assert sorted(zones) == sorted(BLUEPRINTS[bp].posture.private_dns_zones)
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
    spec, posture = blueprint_spec(bp, n), BLUEPRINTS[bp].posture
    identities = {
        i.outputs["id"]: i for i in run.of_type(f"{AZ}:managedidentity:UserAssignedIdentity")
    }
    subnets = {s.outputs["id"]: s for s in run.of_type(f"{AZ}:network:Subnet")}
    computes = run.of_type(f"{AZ}:machinelearningservices:Compute")
    assert len(computes) == n + 1 + int(posture.image_build_compute)
    for compute in computes:
        props = compute.inputs["properties"]
        silo = _silo_of(run, compute)
        purpose = compute.inputs["tags"].get(TAG_PURPOSE)
        assert props["disableLocalAuth"] is True
        identity = compute.inputs["identity"]
        assert identity["type"] == "UserAssigned"
        (identity_id,) = identity["userAssignedIdentities"]
        tags = identities[identity_id].inputs["tags"]
        assert tags.get(TAG_SILO) == silo
        assert tags.get(TAG_PURPOSE) != PURPOSE_AKS_CONTROL_PLANE
        if silo is None:
            # Aggregation runs as the jobs identity, the image builder as its own; none as the
            # workspace's (any submitter may pick any compute).
            wanted = PURPOSE_IMAGE_BUILD if purpose == PURPOSE_IMAGE_BUILD else PURPOSE_JOBS
            assert tags.get(TAG_PURPOSE) == wanted, compute.name
        assert compute.inputs["location"] == spec.region
        assert props["computeLocation"] == (spec.silo(silo).region if silo else spec.region)
        if props["computeType"] == "Kubernetes":
            subnet_id = _check_aks_compute(run, compute, posture)
        else:
            assert props["computeType"] == "AmlCompute"
            cluster = props["properties"]
            assert cluster["scaleSettings"]["minNodeCount"] == 0
            assert cluster["enableNodePublicIp"] is posture.node_public_ip
            assert cluster["remoteLoginPortPublicAccess"] == "Disabled"
            if silo:
                assert cluster["scaleSettings"]["maxNodeCount"] == spec.silo(silo).max_nodes
            subnet_id = cluster.get("subnet", {}).get("id")
        if posture.networked:
            subnet = subnets[subnet_id]
            assert subnet.inputs["subnetName"] == "compute"
            assert subnet.inputs["defaultOutboundAccess"] is True
            assert _silo_of(run, subnet) == silo
        else:
            assert subnet_id is None


def _check_aks_compute(run: MockRun, compute: RecordedResource, posture: NetworkPosture) -> str:
    """An attached AKS cluster: in the compute's region, every pool in one subnet, no node
    with a public IP, the FL pool confidential where the blueprint says so. Its subnet id."""
    props = compute.inputs["properties"]
    (cluster,) = [
        c
        for c in run.of_type(f"{AZ}:containerservice:ManagedCluster")
        if c.outputs["id"] == props["resourceId"]
    ]
    assert cluster.inputs["location"] == props["computeLocation"]
    (pool,) = [
        p
        for p in run.of_type(f"{AZ}:containerservice:AgentPool")
        if p.inputs["resourceName"] == cluster.inputs["resourceName"]
    ]
    pools = [*cluster.inputs["agentPoolProfiles"], pool.inputs]
    assert {p["vnetSubnetID"] for p in pools} == {pool.inputs["vnetSubnetID"]}
    assert all(p["enableNodePublicIP"] is False for p in pools)
    assert vm_size(pool.inputs["vmSize"]).confidential is posture.confidential
    assert pool.inputs["nodeLabels"] == POOL_SELECTOR
    return pool.inputs["vnetSubnetID"]


def test_nat_gateway_outbound_replaces_default_outbound_access() -> None:
    spec = blueprint_spec("eyes-off", 2).model_copy(update={"compute_outbound": "nat-gateway"})
    run = run_spec(spec)
    nats = {g.outputs["id"]: g for g in run.of_type(f"{AZ}:network:NatGateway")}
    ips = {p.outputs["id"]: p for p in run.of_type(f"{AZ}:network:PublicIPAddress")}
    assert len(nats) == len(ips) == 3  # hub + 2 silos, each in its own region
    for subnet in run.of_type(f"{AZ}:network:Subnet"):
        if subnet.inputs["subnetName"] != "compute":
            continue
        assert subnet.inputs["defaultOutboundAccess"] is False
        nat = nats[subnet.inputs["natGateway"]["id"]]
        (ip,) = nat.inputs["publicIpAddresses"]
        assert ips[ip["id"]].inputs["sku"]["name"] == "Standard"
        assert nat.inputs["location"] == ips[ip["id"]].inputs["location"]


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
    bp, _, run = case
    posture = BLUEPRINTS[bp].posture
    (workspace,) = run.of_type(f"{AZ}:machinelearningservices:Workspace")
    (orchestrator_identity,) = [
        i
        for i in run.of_type(f"{AZ}:managedidentity:UserAssignedIdentity")
        if TAG_SILO not in i.inputs["tags"] and TAG_PURPOSE not in i.inputs["tags"]
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
    private = posture.workspace_private
    assert workspace.inputs["publicNetworkAccess"] == ("Disabled" if private else "Enabled")
    assert workspace.inputs["hbiWorkspace"] is private
    # Replaced (created first) under a name that follows the flag: soft delete keeps the old.
    assert workspace.options == {"replaceOnChanges": ["hbiWorkspace"]}
    assert ("-hbi-" in workspace.inputs["workspaceName"]) is private
    assert workspace.inputs.get("imageBuildCompute") == (
        "image-builder" if posture.image_build_compute else None
    )
    assert props["publicNetworkAccess"] == ("Disabled" if private else "Enabled")
    assert registry.inputs["sku"]["name"] == ("Premium" if private else "Basic")
    assert registry.inputs["publicNetworkAccess"] == ("Disabled" if private else "Enabled")


def test_network_layout(case: tuple[str, int, MockRun]) -> None:
    bp, n, run = case
    spec, posture = blueprint_spec(bp, n), BLUEPRINTS[bp].posture
    vnets = run.of_type(f"{AZ}:network:VirtualNetwork")
    if not posture.networked:
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

    # Each VNet: a compute subnet behind the AML NSG and an endpoints subnet, splitting it. A
    # silo's endpoints subnet enforces its own NSG: HTTPS from the silo's compute subnet and
    # the jump host (where the blueprint builds one), every other VNet source denied.
    nsgs = {g.outputs["id"]: g for g in run.of_type(f"{AZ}:network:NetworkSecurityGroup")}
    compute_ranges = {
        _silo_of(run, s): s.inputs["addressPrefix"]
        for s in run.of_type(f"{AZ}:network:Subnet")
        if s.inputs["subnetName"] == "compute"
    }
    jump_space = spec.jump_host.address_space if spec.jump_host is not None else None
    for subnet in run.of_type(f"{AZ}:network:Subnet"):
        if jump_space and ipaddress.ip_network(subnet.inputs["addressPrefix"]).subnet_of(
            ipaddress.ip_network(jump_space)
        ):
            continue  # the jump host's own subnets (tests/infra/test_jump_host.py)
        silo = _silo_of(run, subnet)
        if subnet.inputs["subnetName"] == "compute":
            rules = nsgs[subnet.inputs["networkSecurityGroup"]["id"]].inputs["securityRules"]
            sources = {r["sourceAddressPrefix"] for r in rules if r["access"] == "Allow"}
            assert sources == {"BatchNodeManagement", "AzureMachineLearning"}
            assert all(r["direction"] == "Inbound" for r in rules)
        elif silo is None:
            assert subnet.inputs["privateEndpointNetworkPolicies"] == "Disabled"
            assert subnet.inputs["defaultOutboundAccess"] is False
        else:
            assert subnet.inputs["privateEndpointNetworkPolicies"] == "NetworkSecurityGroupEnabled"
            assert subnet.inputs["defaultOutboundAccess"] is False
            rules = nsgs[subnet.inputs["networkSecurityGroup"]["id"]].inputs["securityRules"]
            allowed = [r for r in rules if r["access"] == "Allow"]
            assert allowed[0]["sourceAddressPrefix"] == compute_ranges[silo]
            # from the hub, only the jump host's subnet, when uploaders come through it
            route = upload_route(spec, silo)
            assert [p for r in allowed[1:] for p in r["sourceAddressPrefixes"]] == route
            assert route == ([spec.jump_host.host_subnet] if spec.jump_host else [])
            assert all(r["destinationPortRange"] == "443" for r in allowed)
            deny = [r for r in rules if r["access"] == "Deny"]
            assert [(r["sourceAddressPrefix"], r["priority"]) for r in deny] == [
                ("VirtualNetwork", 4000)
            ]
        assert ipaddress.ip_network(subnet.inputs["addressPrefix"]).subnet_of(
            ipaddress.ip_network(ranges[_silo_of(run, subnet)])
        )
